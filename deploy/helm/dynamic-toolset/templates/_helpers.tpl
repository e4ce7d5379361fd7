{{/* Full name: the release name, or release-chart when the release name lacks the chart's. */}}
{{- define "dt.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dt.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "dt.labels" -}}
{{ include "dt.selectorLabels" . }}
app.kubernetes.io/component: dynamic-toolsets
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "dt.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dt.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Namespace of the generated ConfigMap. */}}
{{- define "dt.targetNamespace" -}}
{{- default .Release.Namespace .Values.targetNamespace -}}
{{- end -}}

{{- define "dt.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The settings file (key config.yaml of kubernaut-dynamic-toolset-config). */}}
{{- define "dt.settings" -}}
{{- $s := deepCopy (default dict .Values.settings) -}}
{{- range $k := list "configmap" "leader_election" "security" -}}
{{- if hasKey $s $k -}}
{{- fail (printf "settings.%s is set by the chart: use the top-level values (generatedConfigMap, targetNamespace, leaderElection, security)" $k) -}}
{{- end -}}
{{- end -}}
{{- $cm := dict "name" .Values.generatedConfigMap.name "namespace" (include "dt.targetNamespace" .) -}}
{{- if and .Values.generatedConfigMap.ownerReference (eq (include "dt.targetNamespace" .) .Release.Namespace) -}}
{{- $_ := set $cm "owner_deployment" (include "dt.fullname" .) -}}
{{- end -}}
{{- $_ := set $s "configmap" $cm -}}
{{- $le := .Values.leaderElection -}}
{{- $_ := set $s "leader_election" (dict "enabled" $le.enabled "lease_name" $le.leaseName "lease_namespace" .Release.Namespace "lease_duration" $le.leaseDuration "renew_deadline" $le.renewDeadline "retry_period" $le.retryPeriod) -}}
{{- if .Values.detectors.declared -}}
{{- $d := default dict (get $s "detectors") -}}
{{- $_ := set $d "file" "/etc/dynamic-toolset/detectors/detectors.yaml" -}}
{{- $_ := set $s "detectors" $d -}}
{{- end -}}
{{- $sec := .Values.security -}}
{{- $_ := set $s "security" (dict "credential_namespaces" (default list $sec.credentialNamespaces) "endpoint_namespaces" (default list $sec.endpointNamespaces) "external_hosts" (default list $sec.externalHosts)) -}}
{{- toYaml $s -}}
{{- end -}}

{{/* PodDisruptionBudget API: policy/v1 from Kubernetes 1.21 on. */}}
{{- define "dt.pdbApiVersion" -}}
{{- if semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version -}}policy/v1{{- else -}}policy/v1beta1{{- end -}}
{{- end -}}

{{/* Port number of a listen address host:port. */}}
{{- define "dt.port" -}}
{{- regexReplaceAll "^.*:" . "" -}}
{{- end -}}
