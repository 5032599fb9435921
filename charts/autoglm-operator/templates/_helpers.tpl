{{- define "autoglm.fullname" -}}
{{- if contains "autoglm" .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- else -}}{{ printf "%s-autoglm" .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "autoglm.labels" -}}
app.kubernetes.io/name: autoglm
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selectorLabels COMPONENT: the stable subset used in selectors */}}
{{- define "autoglm.selectorLabels" -}}
app.kubernetes.io/name: autoglm
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "autoglm.image" -}}
{{- $repo := .repository -}}
{{- $tag := default .root.Chart.AppVersion .tag -}}
{{- if .root.Values.image.registry -}}{{ printf "%s/%s:%s" .root.Values.image.registry $repo $tag }}{{- else -}}{{ printf "%s:%s" $repo $tag }}{{- end -}}
{{- end -}}

{{/* Pod-level settings every component shares: security, pull secrets, a writable /tmp. */}}
{{- define "autoglm.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir: {}
{{- end -}}

{{/* Environment for the predictive pipeline: endpoints and credentials, secrets by reference. */}}
{{- define "autoglm.pipelineEnv" -}}
- name: AUTOGLM_PROMETHEUS_URL
  value: {{ .Values.prometheus.url | quote }}
- name: AUTOGLM_PROMETHEUS_INSECURE_SKIP_VERIFY
  value: {{ .Values.prometheus.insecureSkipVerify | quote }}
{{- if .Values.prometheus.bearerTokenSecret }}
- name: AUTOGLM_PROMETHEUS_TOKEN
  valueFrom: {secretKeyRef: {name: {{ .Values.prometheus.bearerTokenSecret }}, key: token}}
{{- end }}
- name: AUTOGLM_KAFKA_BOOTSTRAP
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: AUTOGLM_KAFKA_TOPIC
  value: {{ .Values.kafka.topic | quote }}
- name: AUTOGLM_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if .Values.kafka.saslMechanism }}
- name: AUTOGLM_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.saslMechanism | quote }}
{{- end }}
{{- if .Values.kafka.credentialsSecret }}
- name: AUTOGLM_KAFKA_USERNAME
  valueFrom: {secretKeyRef: {name: {{ .Values.kafka.credentialsSecret }}, key: username}}
- name: AUTOGLM_KAFKA_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ .Values.kafka.credentialsSecret }}, key: password}}
{{- end }}
{{- if .Values.kafka.caSecret }}
- name: AUTOGLM_KAFKA_CA_FILE
  value: /etc/autoglm/kafka-ca/ca.crt
{{- end }}
{{- end -}}

{{- /* What the operator reads and writes inside the namespaces it serves: the CR and its children. */}}
{{- define "autoglm.operatorNamespacedRules" -}}
- apiGroups: [autoglm.io]
  resources: [autoglmdeployments]
  verbs: [get, list, watch, patch, update]
- apiGroups: [autoglm.io]
  resources: [autoglmdeployments/status]
  verbs: [get, patch, update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [keda.sh]
  resources: [scaledobjects]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [networking.istio.io]
  resources: [virtualservices, destinationrules]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [security.istio.io]
  resources: [peerauthentications, authorizationpolicies, requestauthentications]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [apps.kubeedge.io]
  resources: [edgeapplications]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [inference.networking.k8s.io]
  resources: [inferencepools]
  verbs: [get, list, watch, create, patch, update, delete]
{{- if .Values.operator.peering.enabled }}
- apiGroups: [kopf.dev]
  resources: [kopfpeerings]
  verbs: [get, list, watch, patch]
{{- end }}
{{- end }}
