{{/*
Helpers mirroring shopfloor/deploy/render.py. Keep the two in step:
tests/unit/test_helm_chart.py compares this chart's output with the renderer's.
*/}}

{{/* InferenceService name: .Values.name, else derived from modelName like render.service_name_for. */}}
{{- define "shopfloor-predictor.serviceName" -}}
{{- if .Values.name -}}
{{- .Values.name -}}
{{- else -}}
{{- $name := regexReplaceAll "[^a-z0-9-]+" (lower .Values.modelName) "-" | trimAll "-" -}}
{{- if and $name (not (regexMatch "^[a-z]" $name)) -}}
{{- printf "m-%s" $name -}}
{{- else -}}
{{- $name -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* KServe deployment mode: explicit, else Serverless for a canary (only Knative splits traffic). */}}
{{- define "shopfloor-predictor.mode" -}}
{{- if .Values.deploymentMode -}}
{{- .Values.deploymentMode -}}
{{- else if include "shopfloor-predictor.isCanary" . -}}
Serverless
{{- else -}}
Standard
{{- end -}}
{{- end -}}

{{/* Non-empty when canaryTrafficPercent is set (0 is a valid canary, null is not). */}}
{{- define "shopfloor-predictor.isCanary" -}}
{{- if not (kindIs "invalid" .Values.canaryTrafficPercent) -}}true{{- end -}}
{{- end -}}

{{/*
The cross-field checks of render.check_spec that values.schema.json cannot express; included by
every template, so a bad combination fails the whole render with the reason.
*/}}
{{- define "shopfloor-predictor.check" -}}
{{- $problems := list -}}
{{- $name := include "shopfloor-predictor.serviceName" . -}}
{{- if or (not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name)) (gt (len $name) 45) -}}
{{- $problems = append $problems (printf "InferenceService name %q must be a DNS-1035 label of at most 45 characters (set name)" $name) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" .Release.Namespace) -}}
{{- $problems = append $problems (printf "namespace %q must be a DNS label" .Release.Namespace) -}}
{{- end -}}
{{- $mode := include "shopfloor-predictor.mode" . -}}
{{- if and (include "shopfloor-predictor.isCanary" .) (ne $mode "Serverless") -}}
{{- $problems = append $problems (printf "canaryTrafficPercent only splits traffic in KServe Serverless (Knative) mode; deploymentMode %q would silently send 100%% to the new version" $mode) -}}
{{- end -}}
{{- if gt (int .Values.minReplicas) (int .Values.maxReplicas) -}}
{{- $problems = append $problems (printf "replicas must satisfy 1 <= minReplicas (%d) <= maxReplicas (%d)" (int .Values.minReplicas) (int .Values.maxReplicas)) -}}
{{- end -}}
{{- if $problems -}}
{{- fail (join "; " $problems) -}}
{{- end -}}
{{- end -}}

{{/*
render.labels: selector-safe labels. The only difference from the renderer:
app.kubernetes.io/managed-by is the release service ("Helm") instead of "shopfloor".
*/}}
{{- define "shopfloor-predictor.labels" -}}
app.kubernetes.io/name: shopfloor-predictor
app.kubernetes.io/instance: {{ include "shopfloor-predictor.serviceName" . | quote }}
app.kubernetes.io/part-of: shopfloor
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
shopfloor.io/model: {{ .Values.modelName | quote }}
shopfloor.io/model-version: {{ .Values.modelVersion | quote }}
{{- end -}}

{{/* render._common_labels: labels without the version and instance (identity and policy objects). */}}
{{- define "shopfloor-predictor.commonLabels" -}}
app.kubernetes.io/name: shopfloor-predictor
app.kubernetes.io/part-of: shopfloor
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
shopfloor.io/model: {{ .Values.modelName | quote }}
{{- end -}}

{{/* Helm's chart label, on object metadata only (never on pods: a chart bump must not restart them). */}}
{{- define "shopfloor-predictor.chartLabel" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" | quote }}
{{- end -}}

{{/* render._lineage_annotations */}}
{{- define "shopfloor-predictor.lineageAnnotations" -}}
shopfloor.io/storage-uri: {{ .Values.modelUri | quote }}
{{- if .Values.dataVersion }}
shopfloor.io/data-version: {{ .Values.dataVersion | quote }}
{{- end }}
{{- end -}}

{{/* A Kubernetes quantity as a string (values may be numbers: 2 -> "2"). */}}
{{- define "shopfloor-predictor.quantity" -}}
{{- toString . | quote -}}
{{- end -}}
