-- Argo CD health check for wt.dev/WorkflowSchedule.
-- Install under resource.customizations.health.wt.dev_WorkflowSchedule in argocd-cm.
--   no status yet / stale observedGeneration -> Progressing
--   Stalled=True (invalid schedule, or suspended after suspendAfterFailures failed
--   runs)                                    -> Degraded (the condition's message)
--   spec.suspend (by a user)                 -> Suspended
--   otherwise                                -> Healthy (next slot)
-- A failed run of the schedule does not make the schedule Degraded: the next slot may
-- succeed; suspendAfterFailures decides when failures are the schedule's problem.
hs = {}
local status = obj.status
if status == nil or status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
  return hs
end
local ready = nil
for _, c in ipairs(status.conditions) do
  if c.type == "Stalled" and c.status == "True" then
    hs.status = "Degraded"
    hs.message = c.message or c.reason or "Stalled"
    return hs
  end
  if c.type == "Ready" then
    ready = c
  end
end
local message = (ready and ready.message) or ""
if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = message ~= "" and message or "Suspended"
  return hs
end
hs.status = "Healthy"
hs.message = message ~= "" and message or "Scheduling"
return hs
