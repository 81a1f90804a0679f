{{/*
Helpers mirroring shopfloor/deploy/render.py. Keep the two in step:
tests/unit/test_helm_chart.py compares this chart's output with the renderer's.
*/}}

{{/*
InferenceService name: .Values.name, else modelName as it is (render.PredictorSpec.service_name).
Never rewritten: "AI4I_failure" and "ai4i-failure" must not end up as one InferenceService, so a
modelName that is not a valid name itself is refused by "shopfloor-predictor.check".
*/}}
{{- define "shopfloor-predictor.serviceName" -}}
{{- .Values.name | default .Values.modelName -}}
{{- end -}}

{{/* The predictor's S3 environment variables, all read from the Secret (settings.S3_SECRET_KEYS). */}}
{{- define "shopfloor-predictor.secretKeys" -}}
AWS_ACCESS_KEY_ID,AWS_SECRET_ACCESS_KEY,SHOPFLOOR_S3_ENDPOINT
{{- end -}}

{{/* Keys the Secret may leave out (settings.OPTIONAL_SECRET_KEYS: the endpoint, absent for AWS S3). */}}
{{- define "shopfloor-predictor.optionalSecretKeys" -}}
SHOPFLOOR_S3_ENDPOINT
{{- end -}}

{{/* uid the project images create and run as (settings.RUN_AS_USER). */}}
{{- define "shopfloor-predictor.runAsUser" -}}
10001
{{- end -}}

{{/*
The amount a Kubernetes quantity stands for, as a float, for comparisons only (render.quantity):
"250m" -> 0.25, "1Gi" -> 1073741824, "1e3" -> 1000. values.schema.json has checked the grammar.
*/}}
{{- define "shopfloor-predictor.quantityValue" -}}
{{- $q := toString . -}}
{{- $number := regexFind "^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)" $q -}}
{{- $suffix := trimPrefix $number $q -}}
{{- if regexMatch "^[eE]" $suffix -}}
{{- float64 $q -}}
{{- else -}}
{{- $factors := dict "" 1.0 "n" 1e-9 "u" 1e-6 "m" 1e-3 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 -}}
{{- mulf (float64 $number) (get $factors $suffix) -}}
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
{{- $label1035 := "^[a-z]([-a-z0-9]*[a-z0-9])?$" -}}
{{- if not .Values.name -}}
{{- if not (and (regexMatch $label1035 .Values.modelName) (le (len .Values.modelName) 45)) -}}
{{- $problems = append $problems (printf "model name %q cannot be the InferenceService name as it is; give one explicitly (--name, Helm value name): it must be a DNS-1035 label (lowercase letters, digits and '-', starting with a letter, ending with a letter or digit, at most 45 characters)" .Values.modelName) -}}
{{- end -}}
{{- end -}}
{{- $tail := printf "%s/%s" .Values.modelName .Values.modelVersion -}}
{{- $key := regexReplaceAll "^s3://[^/]*/" .Values.modelUri "" -}}
{{- if not (or (eq $key $tail) (hasSuffix (printf "/%s" $tail) $key)) -}}
{{- $problems = append $problems (printf "storage URI %q must end with /%s: the predictor loads <registry root>/<model>/<version>, and the labels name what it serves" .Values.modelUri $tail) -}}
{{- end -}}
{{- $ns := .Release.Namespace -}}
{{- if not (and (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns) (le (len $ns) 63)) -}}
{{- $shown := printf "%q" $ns -}}
{{- if gt (len $ns) 60 -}}{{- $shown = printf "%q…(%d chars)" (trunc 46 $ns) (len $ns) -}}{{- end -}}
{{- $problems = append $problems (printf "namespace %s must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)" $shown) -}}
{{- end -}}
{{- $mode := include "shopfloor-predictor.mode" . -}}
{{- if and (include "shopfloor-predictor.isCanary" .) (ne $mode "Serverless") -}}
{{- $problems = append $problems (printf "canaryTrafficPercent only splits traffic in KServe Serverless (Knative) mode; deploymentMode %q would silently send 100%% to the new version" $mode) -}}
{{- end -}}
{{- if eq (int .Values.ports.http) (int .Values.ports.grpc) -}}
{{- $problems = append $problems (printf "HTTP and gRPC ports must differ (both %d)" (int .Values.ports.http)) -}}
{{- end -}}
{{- if gt (int .Values.minReplicas) (int .Values.maxReplicas) -}}
{{- $problems = append $problems (printf "replicas must satisfy 1 <= minReplicas (%d) <= maxReplicas (%d)" (int .Values.minReplicas) (int .Values.maxReplicas)) -}}
{{- end -}}
{{- range $kind := list "cpu" "memory" -}}
{{- $request := index $.Values.resources.requests $kind -}}
{{- $limit := index $.Values.resources.limits $kind -}}
{{- if lt (include "shopfloor-predictor.quantityValue" $limit | float64) (include "shopfloor-predictor.quantityValue" $request | float64) -}}
{{- $problems = append $problems (printf "%s limit %s is below its request %s" $kind (toString $limit) (toString $request)) -}}
{{- end -}}
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
