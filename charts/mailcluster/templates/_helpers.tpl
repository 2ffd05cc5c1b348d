{{/* Names and labels (standard app.kubernetes.io set; component = role). */}}
{{- define "mailcluster.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mailcluster.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "mailcluster.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "mailcluster.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "mailcluster.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mailcluster.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "mailcluster.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "mailcluster.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "mailcluster.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "mailcluster.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{ default (include "mailcluster.fullname" .) .Values.serviceAccount.name }}
{{- else -}}
{{ default "default" .Values.serviceAccount.name }}
{{- end -}}
{{- end -}}

{{/*
The roles: name (component label, resource suffix), key in values, binary, and mailService: the
name suffix of the role's public mail Service, when it has one. Templates range over this list.
*/}}
{{- define "mailcluster.roles" -}}
- {name: smtp-ingress, key: smtpIngress, binary: mailcluster-smtp-ingress, mailService: smtp}
- {name: access, key: access, binary: mailcluster-access, mailService: access}
- {name: delivery-worker, key: deliveryWorker, binary: mailcluster-delivery-worker}
- {name: admin, key: admin, binary: mailcluster-admin}
{{- end -}}

{{/*
The mail listeners of a role (args: list roleName roleValues), as a YAML list of {name,
containerPort, port}: the container's unprivileged port and the Service's standard one. The
implicit-TLS listeners exist only with a TLS Secret. Empty for roles without mail ports.
*/}}
{{- define "mailcluster.mailPorts" -}}
{{- $name := index . 0 -}}
{{- $v := index . 1 -}}
{{- $tls := dig "tls" "existingSecret" "" $v -}}
{{- if eq $name "smtp-ingress" -}}
- {name: smtp, containerPort: 2525, port: {{ $v.service.ports.smtp }}}
- {name: submission, containerPort: 2587, port: {{ $v.service.ports.submission }}}
{{- if $tls }}
- {name: submissions, containerPort: 2465, port: {{ $v.service.ports.submissions }}}
{{- end }}
{{- else if eq $name "access" -}}
- {name: imap, containerPort: 2143, port: {{ $v.service.ports.imap }}}
- {name: pop3, containerPort: 2110, port: {{ $v.service.ports.pop3 }}}
{{- if $tls }}
- {name: imaps, containerPort: 2993, port: {{ $v.service.ports.imaps }}}
- {name: pop3s, containerPort: 2995, port: {{ $v.service.ports.pop3s }}}
{{- end }}
{{- end -}}
{{- end -}}

{{/* Secret holding each credential: the existingSecret if set, else the chart's own Secret. */}}
{{- define "mailcluster.secretName" -}}
{{- include "mailcluster.fullname" . -}}
{{- end -}}

{{- define "mailcluster.secretRef" -}}
{{- /* args: list $ existingSecret existingKey chartKey */ -}}
{{- $ := index . 0 -}}
secretKeyRef:
  name: {{ index . 1 | default (include "mailcluster.secretName" $) }}
  key: {{ if index . 1 }}{{ index . 2 }}{{ else }}{{ index . 3 }}{{ end }}
{{- end -}}

{{/* PostgreSQL URL env: the password comes from a Secret and is expanded by Kubernetes. */}}
{{- define "mailcluster.databaseEnv" -}}
{{- $db := .Values.externalDatabase -}}
- name: MC_DB_PASSWORD
  valueFrom:
    {{- include "mailcluster.secretRef" (list . $db.existingSecret $db.existingSecretPasswordKey "db-password") | nindent 4 }}
- name: MAILCLUSTER_DATABASE__URL
  value: {{ include "mailcluster.databaseUrl" . | quote }}
{{- end -}}

{{/* The URL refers to $(MC_DB_PASSWORD), which must be defined earlier in the same env list. */}}
{{- define "mailcluster.databaseUrl" -}}
{{- $db := .Values.externalDatabase -}}
{{- printf "postgres://%s:$(MC_DB_PASSWORD)@%s:%d/%s?sslmode=%s" $db.user (required "externalDatabase.host is required" $db.host) (int $db.port) $db.database $db.sslMode -}}
{{- end -}}

{{/* Environment every service container gets: stores, ops listener, config file. */}}
{{- define "mailcluster.storeEnv" -}}
{{- $redis := .Values.externalRedis -}}
{{- $s3 := .Values.externalS3 -}}
- name: MAILCLUSTER_CONFIG
  value: /etc/mailcluster/mailcluster.toml
- name: MAILCLUSTER_OPS__LISTEN
  value: "0.0.0.0:9090"
{{ include "mailcluster.databaseEnv" . }}
{{- if or $redis.password $redis.existingSecret }}
- name: MC_REDIS_PASSWORD
  valueFrom:
    {{- include "mailcluster.secretRef" (list . $redis.existingSecret $redis.existingSecretPasswordKey "redis-password") | nindent 4 }}
{{- end }}
- name: MAILCLUSTER_REDIS__URL
  value: {{ printf "%s://%s%s:%d" (ternary "rediss" "redis" $redis.tls) (ternary ":$(MC_REDIS_PASSWORD)@" "" (or (not (empty $redis.password)) (not (empty $redis.existingSecret)))) (required "externalRedis.host is required" $redis.host) (int $redis.port) | quote }}
- name: MAILCLUSTER_REDIS__KEY_PREFIX
  value: {{ $redis.keyPrefix | quote }}
- name: MAILCLUSTER_BLOB__BACKEND
  value: s3
{{- with $s3.endpoint }}
- name: MAILCLUSTER_BLOB__S3__ENDPOINT
  value: {{ . | quote }}
{{- end }}
- name: MAILCLUSTER_BLOB__S3__REGION
  value: {{ $s3.region | quote }}
- name: MAILCLUSTER_BLOB__S3__BUCKET
  value: {{ required "externalS3.bucket is required" $s3.bucket | quote }}
- name: MAILCLUSTER_BLOB__S3__PREFIX
  value: {{ $s3.prefix | quote }}
- name: MAILCLUSTER_BLOB__S3__FORCE_PATH_STYLE
  value: {{ $s3.forcePathStyle | quote }}
- name: MAILCLUSTER_BLOB__S3__ACCESS_KEY_ID
  valueFrom:
    {{- include "mailcluster.secretRef" (list . $s3.existingSecret $s3.existingSecretAccessKeyIDKey "s3-access-key-id") | nindent 4 }}
- name: MAILCLUSTER_BLOB__S3__SECRET_ACCESS_KEY
  valueFrom:
    {{- include "mailcluster.secretRef" (list . $s3.existingSecret $s3.existingSecretKeySecretKey "s3-secret-access-key") | nindent 4 }}
- name: MAILCLUSTER_SMTP__HOSTNAME
  value: {{ required "mailHostname is required" .Values.mailHostname | quote }}
- name: MAILCLUSTER_DELIVERY__HOSTNAME
  value: {{ .Values.mailHostname | quote }}
{{- end -}}

{{/* True when the chart must render its own Secret (some credential is given inline). */}}
{{- define "mailcluster.needsSecret" -}}
{{- $v := .Values -}}
{{- if or (not $v.externalDatabase.existingSecret) (and $v.externalRedis.password (not $v.externalRedis.existingSecret)) (not $v.externalS3.existingSecret) (not $v.adminToken.existingSecret) -}}
true
{{- end -}}
{{- end -}}
