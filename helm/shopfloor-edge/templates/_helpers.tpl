{{/*
Helpers of the edge chart. Defaults and constants are shopfloor.settings' (checked by
tests/unit/test_edge_chart.py); names are checked by values.schema.json with shopfloor.names' rules.
*/}}

{{/* uid the project images create and run as (settings.RUN_AS_USER). */}}
{{- define "shopfloor-edge.runAsUser" -}}
10001
{{- end -}}

{{/* Where the model store lives in the container (settings.EDGE_STORE_PATH). */}}
{{- define "shopfloor-edge.storePath" -}}
/var/lib/shopfloor/store
{{- end -}}

{{/* Trust file mount (public keys only). */}}
{{- define "shopfloor-edge.trustDir" -}}
/etc/shopfloor/trust
{{- end -}}

{{- define "shopfloor-edge.labels" -}}
app.kubernetes.io/name: shopfloor-edge
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: edge-runtime
app.kubernetes.io/part-of: shopfloor
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
shopfloor.io/site: {{ .Values.site }}
shopfloor.io/model: {{ .Values.modelName }}
shopfloor.io/model-version: {{ .Values.modelVersion }}
{{- end -}}

{{- define "shopfloor-edge.selector" -}}
app.kubernetes.io/name: shopfloor-edge
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
The amount a Kubernetes quantity stands for, as a float, for comparisons only
(shopfloor.deploy.render.quantity). values.schema.json has checked the grammar.
*/}}
{{- define "shopfloor-edge.quantityValue" -}}
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

{{/* Cross-field checks values.schema.json cannot express; every template includes them. */}}
{{- define "shopfloor-edge.check" -}}
{{- $problems := list -}}
{{- $ns := .Release.Namespace -}}
{{- if not (and (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $ns) (le (len $ns) 63)) -}}
{{- $problems = append $problems (printf "namespace %q must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)" $ns) -}}
{{- end -}}
{{- range $kind := list "cpu" "memory" -}}
{{- $request := index $.Values.resources.requests $kind -}}
{{- $limit := index $.Values.resources.limits $kind -}}
{{- if lt (float64 (include "shopfloor-edge.quantityValue" $limit)) (float64 (include "shopfloor-edge.quantityValue" $request)) -}}
{{- $problems = append $problems (printf "%s limit %v is below its request %v" $kind $limit $request) -}}
{{- end -}}
{{- end -}}
{{- if eq (len .Values.trust.keys) 0 -}}
{{- $problems = append $problems "trust.keys is empty: the runtime would trust no signing key (add the public keys of your release keys)" -}}
{{- end -}}
{{- if $problems -}}
{{- fail (join "; " $problems) -}}
{{- end -}}
{{- end -}}
