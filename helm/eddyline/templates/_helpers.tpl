{{/*
The chart name, or nameOverride.
*/}}
{{- define "eddyline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every resource name: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". Truncated so suffixed names stay within 63.
*/}}
{{- define "eddyline.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Names of the parts. The controller is told the JobManager's URL and the TaskManager
Deployment's name through its arguments and environment (controller/deployment.yaml).
*/}}
{{- define "eddyline.jobmanager" -}}{{ include "eddyline.fullname" . }}-jobmanager{{- end }}
{{- define "eddyline.taskmanager" -}}{{ include "eddyline.fullname" . }}-taskmanager{{- end }}
{{- define "eddyline.controller" -}}{{ include "eddyline.fullname" . }}-controller{{- end }}
{{- define "eddyline.flinkConfig" -}}{{ include "eddyline.fullname" . }}-flink-config{{- end }}
{{- define "eddyline.stateClaim" -}}
{{- default (printf "%s-flink-state" (include "eddyline.fullname" .)) .Values.flink.state.persistence.existingClaim }}
{{- end }}

{{/*
The Flink REST API and Web UI inside the cluster.
*/}}
{{- define "eddyline.flinkUrl" -}}
http://{{ include "eddyline.jobmanager" . }}:{{ .Values.jobmanager.ports.rest }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "eddyline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource.
*/}}
{{- define "eddyline.labels" -}}
helm.sh/chart: {{ include "eddyline.chart" . }}
app.kubernetes.io/name: {{ include "eddyline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: eddyline
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of one component: (dict "ctx" $ "component" "jobmanager").
*/}}
{{- define "eddyline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "eddyline.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Labels of one component's resources: the common labels plus the component.
*/}}
{{- define "eddyline.componentLabels" -}}
{{ include "eddyline.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The image reference: repository@digest, else repository:tag (tag defaults to appVersion).
*/}}
{{- define "eddyline.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The controller's ServiceAccount name.
*/}}
{{- define "eddyline.controllerServiceAccount" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "eddyline.controller" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- required "controller.serviceAccount.name is required when controller.serviceAccount.create is false" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Flink pods' ServiceAccounts: the JobManager's (and the helm test's), and the TaskManagers'.
Without high availability they have no role and no token; with it, the JobManager's may write
ConfigMaps and the TaskManagers' only read them (jobmanager/role.yaml, taskmanager/role.yaml).
*/}}
{{- define "eddyline.flinkServiceAccount" -}}{{ include "eddyline.fullname" . }}-flink{{- end }}
{{- /* The TaskManagers' own: with HA they only read the leader's ConfigMap (they run users' code). */}}
{{- define "eddyline.taskmanagerServiceAccount" -}}{{ include "eddyline.taskmanager" . }}{{- end }}

{{/*
Where Flink's state lives, checked: every problem with flink.state is listed at once, and a
release without a bucket or a shared volume is refused unless ephemeral state is asked for.
Returns "s3", "volume" or "ephemeral".
*/}}
{{- define "eddyline.stateKind" -}}
{{- $st := .Values.flink.state }}
{{- $chosen := list }}
{{- if $st.s3.bucket }}{{ $chosen = append $chosen "flink.state.s3.bucket" }}{{ end }}
{{- if $st.persistence.enabled }}{{ $chosen = append $chosen "flink.state.persistence.enabled" }}{{ end }}
{{- if $st.ephemeral }}{{ $chosen = append $chosen "flink.state.ephemeral" }}{{ end }}
{{- $problems := list }}
{{- if not $chosen }}
{{- $problems = append $problems "no place for checkpoints, savepoints and HA metadata: set flink.state.s3.bucket (with flink.state.s3.credentialsSecret, and flink.state.s3.endpoint for a store other than AWS S3), or flink.state.persistence.enabled=true (a ReadWriteMany volume), or flink.state.ephemeral=true to accept losing all job state whenever a pod restarts" }}
{{- else if gt (len $chosen) 1 }}
{{- $problems = append $problems (printf "choose one place for job state, not %s" (join " and " $chosen)) }}
{{- end }}
{{- if and (not $st.s3.bucket) (or $st.s3.endpoint $st.s3.credentialsSecret) }}
{{- $problems = append $problems "flink.state.s3.endpoint or credentialsSecret is set but flink.state.s3.bucket is empty" }}
{{- end }}
{{- if and $st.s3.endpoint (not (regexMatch "^https?://[^/]+/?$" $st.s3.endpoint)) }}
{{- $problems = append $problems (printf "flink.state.s3.endpoint %q must be a URL like https://host[:port]" $st.s3.endpoint) }}
{{- end }}
{{- range $key := list "s3.access-key" "s3.secret-key" "s3.access.key" "s3.secret.key" "fs.s3a.access.key" "fs.s3a.secret.key" }}
{{- if hasKey $.Values.flink.configuration $key }}
{{- $problems = append $problems (printf "flink.configuration.%s would put a credential into a ConfigMap: name a Secret in flink.state.s3.credentialsSecret instead" $key) }}
{{- end }}
{{- end }}
{{- if $problems }}
{{- fail (printf "where Flink keeps job state (flink.state):\n  - %s" (join "\n  - " $problems)) }}
{{- end }}
{{- if $st.s3.bucket }}s3{{ else if $st.persistence.enabled }}volume{{ else }}ephemeral{{ end }}
{{- end }}

{{/*
The state location's URI: s3://bucket/prefix/namespace/release or file:///mount/path.
*/}}
{{- define "eddyline.stateUri" -}}
{{- $s3 := .Values.flink.state.s3 }}
{{- if eq (include "eddyline.stateKind" .) "s3" }}
{{- /* The namespace too: two releases of the same name in different namespaces sharing a
bucket must not share checkpoints or HA metadata. */}}
{{- $parts := compact (list $s3.bucket (trimAll "/" $s3.prefix) .Release.Namespace (include "eddyline.fullname" .)) }}
{{- printf "s3://%s" (join "/" $parts) }}
{{- else }}
{{- printf "file://%s" (trimSuffix "/" .Values.flink.state.mountPath) }}
{{- end }}
{{- end }}

{{/*
"true" when the JobManager runs with Kubernetes HA (asked for, and state is shared).
*/}}
{{- define "eddyline.ha" -}}
{{- if and .Values.jobmanager.highAvailability.enabled (ne (include "eddyline.stateKind" .) "ephemeral") }}true{{ end }}
{{- end }}

{{/*
A Kubernetes quantity in Mi or Gi, as a number of mebibytes.
*/}}
{{- define "eddyline.mebibytes" -}}
{{- $v := toString . }}
{{- if hasSuffix "Gi" $v }}{{ mul (trimSuffix "Gi" $v | int) 1024 }}{{ else }}{{ trimSuffix "Mi" $v | int }}{{ end }}
{{- end }}

{{/*
Pod securityContext of every pod: Flink's image user (9999), never root, default seccomp.
*/}}
{{- define "eddyline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 9999
runAsGroup: 9999
fsGroup: 9999
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Container securityContext of every container: read-only root, no privilege, no capability.
*/}}
{{- define "eddyline.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 9999
runAsGroup: 9999
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Annotations of a pod: (dict "ctx" $ "port" 9249 "flinkConfig" true). Prometheus scrape
annotations (metrics.podAnnotations), a checksum of the Flink ConfigMap for the Flink pods (a
configuration change rolls them), then podAnnotations. Empty when there are none.
*/}}
{{- define "eddyline.podAnnotations" -}}
{{- $ctx := .ctx }}
{{- if .flinkConfig }}
checksum/flink-config: {{ include (print $ctx.Template.BasePath "/flink/configmap.yaml") $ctx | sha256sum }}
{{- end }}
{{- if $ctx.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with $ctx.Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Environment from the Kafka Secret, if one is named.
*/}}
{{- define "eddyline.kafkaEnvFrom" -}}
{{- if .Values.kafka.existingSecret -}}
envFrom:
  - secretRef:
      name: {{ .Values.kafka.existingSecret }}
{{- end }}
{{- end }}

{{/*
How the pods connect to Kafka (kafka.security), checked: every problem is listed at once, naming
the values to set. Credentials only ever come from kafka.existingSecret.
*/}}
{{- define "eddyline.kafkaCheck" -}}
{{- $k := .Values.kafka }}
{{- $sec := $k.security }}
{{- $sasl := hasPrefix "SASL_" $sec.protocol }}
{{- $tls := has $sec.protocol (list "SSL" "SASL_SSL") }}
{{- $problems := list }}
{{- if and $sasl (not $sec.saslMechanism) }}
{{- $problems = append $problems (printf "kafka.security.protocol %s needs kafka.security.saslMechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512" $sec.protocol) }}
{{- end }}
{{- if and $sasl (not $k.existingSecret) }}
{{- $problems = append $problems (printf "kafka.security.protocol %s needs kafka.existingSecret: a Secret (created by you) with the keys KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD; credentials never go into values" $sec.protocol) }}
{{- end }}
{{- if and $sec.saslMechanism (not $sasl) }}
{{- $problems = append $problems (printf "kafka.security.saslMechanism %s is set but kafka.security.protocol is %s: set the protocol to SASL_SSL or SASL_PLAINTEXT, or leave saslMechanism empty" $sec.saslMechanism $sec.protocol) }}
{{- end }}
{{- if and $sec.caSecret.name (not $tls) }}
{{- $problems = append $problems (printf "kafka.security.caSecret.name is set but kafka.security.protocol %s does not use TLS: set the protocol to SSL or SASL_SSL, or leave caSecret.name empty" $sec.protocol) }}
{{- end }}
{{- if and $sec.clientCertSecret.name (not $tls) }}
{{- $problems = append $problems (printf "kafka.security.clientCertSecret.name is set but kafka.security.protocol %s does not use TLS: set the protocol to SSL or SASL_SSL, or leave clientCertSecret.name empty" $sec.protocol) }}
{{- end }}
{{- range $key, $_ := .Values.flink.configuration }}
{{- if regexMatch "(^|\\.)(sasl\\.jaas\\.config|sasl\\.password|ssl\\.key\\.password|ssl\\.keystore\\.password|ssl\\.truststore\\.password)$" $key }}
{{- $problems = append $problems (printf "flink.configuration.%s would put a Kafka credential into a ConfigMap: put it in the kafka.existingSecret Secret (KAFKA_SASL_PASSWORD, KAFKA_SSL_KEY_PASSWORD) instead" $key) }}
{{- end }}
{{- end }}
{{- if $problems }}
{{- fail (printf "how the pods connect to Kafka (kafka.security):\n  - %s" (join "\n  - " $problems)) }}
{{- end }}
{{- end }}

{{/*
Where the Kafka TLS files are mounted: the same paths in the controller, the JobManager and the
TaskManagers (a job's driver, in the JobManager, hands the CA's path to the Kafka connector that
runs in the TaskManagers).
*/}}
{{- define "eddyline.kafkaCaFile" -}}/etc/eddyline/kafka/ca/ca.crt{{- end }}
{{- define "eddyline.kafkaClientDir" -}}/etc/eddyline/kafka/client{{- end }}

{{/*
The KAFKA_* environment deploy/kafka_security.py reads, from kafka.security (no secret: those
come from kafka.existingSecret through envFrom). Nothing for PLAINTEXT with nothing set, so a
protocol given in existingSecret still applies; a setting made here wins over the Secret's.
*/}}
{{- define "eddyline.kafkaEnv" -}}
{{- include "eddyline.kafkaCheck" . }}
{{- $sec := .Values.kafka.security }}
{{- if ne $sec.protocol "PLAINTEXT" }}
- name: KAFKA_SECURITY_PROTOCOL
  value: {{ $sec.protocol }}
{{- end }}
{{- with $sec.saslMechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ . }}
{{- end }}
{{- if $sec.caSecret.name }}
- name: KAFKA_SSL_CA_LOCATION
  value: {{ include "eddyline.kafkaCaFile" . }}
{{- end }}
{{- if $sec.clientCertSecret.name }}
- name: KAFKA_SSL_CERTIFICATE_LOCATION
  value: {{ include "eddyline.kafkaClientDir" . }}/tls.crt
- name: KAFKA_SSL_KEY_LOCATION
  value: {{ include "eddyline.kafkaClientDir" . }}/tls.key
{{- end }}
{{- end }}

{{/*
The Kafka TLS Secrets, read-only: the CA (only its key, as ca.crt) and the client certificate.
Mode 0440: root owns the files, the pods' fsGroup (9999) reads them.
*/}}
{{- define "eddyline.kafkaVolumeMounts" -}}
{{- $sec := .Values.kafka.security }}
{{- if $sec.caSecret.name }}
- name: kafka-ca
  mountPath: {{ include "eddyline.kafkaCaFile" . | dir }}
  readOnly: true
{{- end }}
{{- if $sec.clientCertSecret.name }}
- name: kafka-client-cert
  mountPath: {{ include "eddyline.kafkaClientDir" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "eddyline.kafkaVolumes" -}}
{{- $sec := .Values.kafka.security }}
{{- if $sec.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ $sec.caSecret.name }}
    items:
      - key: {{ $sec.caSecret.key }}
        path: {{ include "eddyline.kafkaCaFile" . | base }}
    defaultMode: 0440
{{- end }}
{{- if $sec.clientCertSecret.name }}
- name: kafka-client-cert
  secret:
    secretName: {{ $sec.clientCertSecret.name }}
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
    defaultMode: 0440
{{- end }}
{{- end }}

{{/*
One line for the install notes: how the pods connect to Kafka, and which Secrets hold what. Never
a secret value.
*/}}
{{- define "eddyline.kafkaSummary" -}}
{{- $k := .Values.kafka }}
{{- $sec := $k.security }}
{{- $parts := list (printf "Kafka: %s over %s" $k.bootstrapServers $sec.protocol) }}
{{- if $sec.saslMechanism }}
{{- $parts = append $parts (printf "%s with the credentials in Secret %s" $sec.saslMechanism $k.existingSecret) }}
{{- else if $k.existingSecret }}
{{- $parts = append $parts (printf "environment from Secret %s" $k.existingSecret) }}
{{- end }}
{{- if has $sec.protocol (list "SSL" "SASL_SSL") }}
{{- if $sec.caSecret.name }}
{{- $parts = append $parts (printf "CA from Secret %s (key %s)" $sec.caSecret.name $sec.caSecret.key) }}
{{- else }}
{{- $parts = append $parts "CA: the clients' default trust stores" }}
{{- end }}
{{- with $sec.clientCertSecret.name }}
{{- $parts = append $parts (printf "client certificate from Secret %s" .) }}
{{- end }}
{{- end }}
{{- join "; " $parts }}
{{- end }}

{{/*
Environment every Flink container shares: where Flink finds its configuration and writes logs.
*/}}
{{- define "eddyline.flinkEnv" -}}
- name: FLINK_CONF_DIR
  value: /opt/flink/conf
- name: FLINK_LOG_DIR
  value: /opt/flink/log
- name: FLINK_PID_DIR
  value: /tmp
# Python (the job drivers, the UDF workers) may write under $HOME: keep it on the emptyDir.
- name: HOME
  value: /tmp
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
{{- $s3 := .Values.flink.state.s3 }}
{{- if and (eq (include "eddyline.stateKind" .) "s3") $s3.credentialsSecret }}
# The S3 filesystem reads its access key from these (the AWS SDK's environment provider).
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ $s3.credentialsSecret }}
      key: {{ $s3.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.credentialsSecret }}
      key: {{ $s3.secretAccessKeyKey }}
{{- end }}
{{- end }}

{{/*
Volume mounts every Flink container shares: configuration (read-only), logs, scratch, state.
The root filesystem is read-only; these are the only places Flink and Python write.
*/}}
{{- define "eddyline.flinkVolumeMounts" -}}
- name: flink-config
  mountPath: /opt/flink/conf
  readOnly: true
- name: flink-log
  mountPath: /opt/flink/log
- name: flink-tmp
  mountPath: /opt/flink/tmp
- name: tmp
  mountPath: /tmp
- name: flink-state
  mountPath: {{ .Values.flink.state.mountPath }}
{{- end }}

{{- define "eddyline.flinkVolumes" -}}
- name: flink-config
  configMap:
    name: {{ include "eddyline.flinkConfig" . }}
- name: flink-log
  emptyDir:
    sizeLimit: 1Gi
- name: flink-tmp
  emptyDir:
    sizeLimit: 4Gi
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: flink-state
{{- if eq (include "eddyline.stateKind" .) "volume" }}
  persistentVolumeClaim:
    claimName: {{ include "eddyline.stateClaim" . }}
{{- else }}
  emptyDir: {}
{{- end }}
{{- end }}
