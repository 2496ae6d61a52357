{{- define "stepframe.fullname" -}}
{{- printf "%s" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stepframe.labels" -}}
app.kubernetes.io/name: stepframe
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stepframe.selectorLabels" -}}
app.kubernetes.io/name: stepframe
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
