-- Argo CD health check for wt.dev/WorkflowRun.
-- Install under resource.customizations.health.wt.dev_WorkflowRun in argocd-cm.
--   no status yet / stale observedGeneration -> Progressing
--   Pending, Queued, Running, Submitted      -> Progressing (status.message)
--   Succeeded                                -> Healthy
--   Failed, Cancelled                        -> Degraded (status.message)
-- Unlike kstatus (Flux), which calls an object with no conditions yet Current,
-- a brand-new run that the operator has not picked up is Progressing here.
hs = {}
local status = obj.status
if status == nil or status.phase == nil then
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
local phase = status.phase
local message = status.message or ""
if phase == "Succeeded" then
  hs.status = "Healthy"
  hs.message = message ~= "" and message or "Succeeded"
elseif phase == "Failed" or phase == "Cancelled" then
  hs.status = "Degraded"
  hs.message = message ~= "" and message or phase
elseif phase == "Pending" or phase == "Queued" or phase == "Running" or phase == "Submitted" then
  hs.status = "Progressing"
  hs.message = message ~= "" and message or phase
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
