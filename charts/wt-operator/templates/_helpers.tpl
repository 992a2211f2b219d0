{{/* Chart name, truncated to 63 characters (the DNS label limit of names and labels). */}}
{{- define "wt-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart, truncated to 63 characters. */}}
{{- define "wt-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* fullname + "-" + suffix, the fullname cut first so the suffix survives and the whole
stays within 63 characters: names that differ only in their suffix never collide.
Call with (list $ "suffix"). */}}
{{- define "wt-operator.suffixedName" -}}
{{- $ctx := index . 0 }}
{{- $suffix := index . 1 }}
{{- $base := include "wt-operator.fullname" $ctx | trunc (int (sub 62 (len $suffix))) | trimSuffix "-" }}
{{- printf "%s-%s" $base $suffix }}
{{- end }}

{{/* The operator image: repository@digest when a digest is set (it wins), else repository:tag. */}}
{{- define "wt-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "wt-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wt-operator.fullname" .) .Values.serviceAccount.name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "wt-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wt-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wt-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "wt-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The namespaced rules the operator needs where it watches WorkflowRuns. */}}
{{- define "wt-operator.runRules" -}}
- apiGroups: ["wt.dev"]
  resources: ["workflowruns"]
  # delete: retention (spec.ttlSecondsAfterFinished / operator.ttlSecondsAfterFinished) and
  # schedules' history limits; create: a schedule's runs, always in the schedule's own
  # namespace and owned by it; patch: finalizers and spec.cancel (concurrencyPolicy Replace).
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["wt.dev"]
  resources: ["workflowruns/status"]
  verbs: ["get", "patch"]
- apiGroups: ["wt.dev"]
  resources: ["workflowschedules"]
  # patch: kopf's finalizer, and spec.suspend after suspendAfterFailures failed runs.
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["wt.dev"]
  resources: ["workflowschedules/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["configmaps"]
  # get: spec.configFrom and env configMapKeyRef, and a log ConfigMap found under its name
  # after a lost reply; create/update: each Local run's output in the ConfigMap
  # wt-log-<run uid>[-<random>] beside the run (`kubectl wt logs`), updated by uid.
  verbs: ["get", "create", "update"]
{{- if .Values.rbac.secretAccess }}
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
{{- end }}
{{- end }}

{{/* The Prometheus selector of this release's scraped metrics: the ServiceMonitor makes
`job` the metrics Service's name, `namespace` the release's. */}}
{{- define "wt-operator.metricsSelector" -}}
job="{{ include "wt-operator.suffixedName" (list . "metrics") }}",namespace="{{ .Release.Namespace }}"
{{- end }}

{{/* Where the admission policies apply: the namespaces the operator watches. A
ValidatingAdmissionPolicyBinding's matchResources (empty: every namespace). */}}
{{- define "wt-operator.policyMatchResources" -}}
{{- if not .Values.watch.allNamespaces }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: In
      values:
        {{- toYaml .Values.watch.namespaces | nindent 8 }}
{{- end }}
{{- end }}

{{/* What marks a WorkflowRun as managed by a GitOps tool, which would re-create it if the
operator deleted it. MIRRORS wt_operator.api.GITOPS_MARKERS (the operator skips its default
TTL for such runs): change both together. */}}
{{- define "wt-operator.gitopsMarkers" -}}
annotations:
  - argocd.argoproj.io/tracking-id
labels:
  - argocd.argoproj.io/instance
  - kustomize.toolkit.fluxcd.io/name
  - helm.toolkit.fluxcd.io/name
{{- end }}

{{/* A glob list (only `*` is special: any characters) as a CEL list of anchored RE2
regexes; every other character is quoted, and toJson makes each a valid CEL string. */}}
{{- define "wt-operator.globRegexes" -}}
{{- $out := list }}
{{- range . }}
{{- $parts := list }}
{{- range splitList "*" . }}
{{- $parts = append $parts (regexQuoteMeta .) }}
{{- end }}
{{- $out = append $out (printf "^%s$" (join ".*" $parts)) }}
{{- end }}
{{- toJson $out }}
{{- end }}
