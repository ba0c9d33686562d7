{{/* Chart name. */}}
{{- define "pa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-wide name; component names add a suffix, so it is kept to 48 characters. */}}
{{- define "pa.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 48 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "pa.controlPlane.fullname" -}}
{{- printf "%s-control-plane" (include "pa.fullname" .) }}
{{- end }}

{{- define "pa.dataPlane.fullname" -}}
{{- printf "%s-data-plane" (include "pa.fullname" .) }}
{{- end }}

{{- define "pa.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "pa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: port-authorizing
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "component" "control-plane"). */}}
{{- define "pa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pa.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "pa.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "pa.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "pa.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Name of the Secret holding one entry of .Values.secrets: (dict "ctx" $ "entry" .Values.secrets.masterKey). */}}
{{- define "pa.secretName" -}}
{{- if .entry.secretName }}
{{- .entry.secretName }}
{{- else if .ctx.Values.secrets.existingSecret }}
{{- .ctx.Values.secrets.existingSecret }}
{{- else }}
{{- printf "%s-secrets" (include "pa.fullname" .ctx) }}
{{- end }}
{{- end }}

{{/* In-cluster gRPC address of the control plane. */}}
{{- define "pa.controlPlane.grpcAddress" -}}
{{- printf "%s.%s.svc:%v" (include "pa.controlPlane.fullname" .) .Release.Namespace .Values.controlPlane.ports.grpc }}
{{- end }}

{{/* In-cluster tunnel URL of the data plane (https:// when the tunnel listener has a certificate). */}}
{{- define "pa.dataPlane.tunnelUrl" -}}
{{- printf "%s://%s.%s.svc:%v" (ternary "https" "http" (ne .Values.tls.tunnel.secretName "")) (include "pa.dataPlane.fullname" .) .Release.Namespace .Values.dataPlane.ports.tunnel }}
{{- end }}

{{/* Where the TLS files are mounted (inside the secrets volume). */}}
{{- define "pa.tlsDir" -}}
/run/secrets/port-authorizing/tls
{{- end }}

{{/* Refuses TLS settings that cannot work together. */}}
{{- define "pa.checkTls" -}}
{{- $t := .Values.tls.grpc }}
{{- if and $t.nodeCa.secretName (not $t.secretName) }}
{{- fail "tls.grpc.nodeCa (mutual TLS) needs tls.grpc.secretName: the control plane's own certificate" }}
{{- end }}
{{- if and $t.nodeCa.secretName (not $t.nodeClientSecretName) }}
{{- fail "tls.grpc.nodeCa (mutual TLS) needs tls.grpc.nodeClientSecretName: the nodes' client certificate" }}
{{- end }}
{{- if and .Values.dataPlane.ports.postgresDirect (not .Values.tls.tunnel.secretName) }}
{{- fail "dataPlane.ports.postgresDirect needs tls.tunnel.secretName: direct PostgreSQL connections carry the grant as the password and require TLS" }}
{{- end }}
{{- end }}

{{/* REDIS_URL from a Secret, when one is named. */}}
{{- define "pa.redisEnv" -}}
{{- if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- end }}
{{- end }}

{{/* Settings of `common.config` and a component's `config`, empty values left out: (dict "ctx" $ "config" .Values.controlPlane.config). */}}
{{- define "pa.configMapData" -}}
{{- $data := dict }}
{{- range $k, $v := .ctx.Values.common.config }}
{{- if ne (toString $v) "" }}{{ $_ := set $data $k (toString $v) }}{{ end }}
{{- end }}
{{- range $k, $v := .config }}
{{- if ne (toString $v) "" }}{{ $_ := set $data $k (toString $v) }}{{ end }}
{{- end }}
{{- if and .ctx.Values.redis.url (not .ctx.Values.redis.existingSecret) }}
{{- $_ := set $data "REDIS_URL" .ctx.Values.redis.url }}
{{- end }}
{{- $_ := set $data "PA_DATA_DIR" "/var/lib/port-authorizing" }}
{{- toYaml $data }}
{{- end }}

{{/* Spread constraints with the component's selector filled in where none is given. */}}
{{- define "pa.topologySpread" -}}
{{- $out := list }}
{{- range .constraints }}
{{- $c := deepCopy . }}
{{- if not (hasKey $c "labelSelector") }}
{{- $_ := set $c "labelSelector" (dict "matchLabels" (include "pa.selectorLabels" (dict "ctx" $.ctx "component" $.component) | fromYaml)) }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- toYaml $out }}
{{- end }}
