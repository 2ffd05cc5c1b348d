{{/* Role-specific environment (listeners, TLS, PROXY protocol, admin token). */}}
{{- define "mailcluster.env.smtp-ingress" -}}
{{- $v := .Values.smtpIngress -}}
- name: MAILCLUSTER_SMTP__MX_LISTEN
  value: '["0.0.0.0:2525"]'
- name: MAILCLUSTER_SMTP__SUBMISSION_LISTEN
  value: '["0.0.0.0:2587"]'
{{- if $v.tls.existingSecret }}
- name: MAILCLUSTER_SMTP__SUBMISSIONS_LISTEN
  value: '["0.0.0.0:2465"]'
- name: MAILCLUSTER_TLS__CERT_FILE
  value: /etc/mailcluster-tls/tls.crt
- name: MAILCLUSTER_TLS__KEY_FILE
  value: /etc/mailcluster-tls/tls.key
- name: MAILCLUSTER_TLS__RELOAD_CHECK_SECS
  value: "60"
{{- else }}
- name: MAILCLUSTER_SMTP__SUBMISSIONS_LISTEN
  value: "[]"
{{- end }}
{{- if $v.proxyProtocol.enabled }}
{{- if not $v.proxyProtocol.trustedNetworks }}
{{- fail "smtpIngress.proxyProtocol.trustedNetworks must list the load balancers' networks" }}
{{- end }}
- name: MAILCLUSTER_SMTP__PROXY_PROTOCOL_TRUSTED
  value: {{ $v.proxyProtocol.trustedNetworks | toJson | quote }}
{{- end }}
{{- end -}}

{{- define "mailcluster.env.access" -}}
{{- $v := .Values.access -}}
- name: MAILCLUSTER_ACCESS__HOSTNAME
  value: {{ required "mailHostname is required" .Values.mailHostname | quote }}
- name: MAILCLUSTER_ACCESS__IMAP_LISTEN
  value: '["0.0.0.0:2143"]'
- name: MAILCLUSTER_ACCESS__POP3_LISTEN
  value: '["0.0.0.0:2110"]'
{{- if $v.tls.existingSecret }}
- name: MAILCLUSTER_ACCESS__IMAPS_LISTEN
  value: '["0.0.0.0:2993"]'
- name: MAILCLUSTER_ACCESS__POP3S_LISTEN
  value: '["0.0.0.0:2995"]'
- name: MAILCLUSTER_TLS__CERT_FILE
  value: /etc/mailcluster-tls/tls.crt
- name: MAILCLUSTER_TLS__KEY_FILE
  value: /etc/mailcluster-tls/tls.key
- name: MAILCLUSTER_TLS__RELOAD_CHECK_SECS
  value: "60"
{{- else }}
- name: MAILCLUSTER_ACCESS__IMAPS_LISTEN
  value: "[]"
- name: MAILCLUSTER_ACCESS__POP3S_LISTEN
  value: "[]"
{{- end }}
{{- with $v.plaintextAuthNetworks }}
- name: MAILCLUSTER_ACCESS__PLAINTEXT_AUTH_NETWORKS
  value: {{ . | toJson | quote }}
{{- end }}
{{- if $v.proxyProtocol.enabled }}
{{- if not $v.proxyProtocol.trustedNetworks }}
{{- fail "access.proxyProtocol.trustedNetworks must list the load balancers' networks" }}
{{- end }}
- name: MAILCLUSTER_ACCESS__PROXY_PROTOCOL_TRUSTED
  value: {{ $v.proxyProtocol.trustedNetworks | toJson | quote }}
{{- end }}
{{- end -}}

{{- define "mailcluster.env.delivery-worker" -}}
{{- end -}}

{{- define "mailcluster.env.admin" -}}
{{- $t := .Values.adminToken -}}
- name: MAILCLUSTER_ADMIN__LISTEN
  value: "0.0.0.0:8080"
- name: MAILCLUSTER_ADMIN__MIGRATE_ON_START
  value: {{ not .Values.migrations.enabled | quote }}
- name: MAILCLUSTER_ADMIN__TOKEN
  valueFrom:
    {{- include "mailcluster.secretRef" (list . $t.existingSecret $t.existingSecretKey "admin-token") | nindent 4 }}
{{- end -}}
