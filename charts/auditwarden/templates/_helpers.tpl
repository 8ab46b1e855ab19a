{{/*
Names.
*/}}
{{- define "auditwarden.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "auditwarden.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "auditwarden.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "auditwarden.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auditwarden.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "auditwarden.labels" -}}
helm.sh/chart: {{ include "auditwarden.chart" . }}
{{ include "auditwarden.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: admission-webhook
app.kubernetes.io/part-of: auditwarden
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "auditwarden.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "auditwarden.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "auditwarden.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Where the certificate comes from: url | cert-manager | existing-secret | generated.
*/}}
{{- define "auditwarden.tlsSource" -}}
{{- if .Values.webhook.url }}url
{{- else if .Values.certManager.enabled }}cert-manager
{{- else if .Values.tls.existingSecret }}existing-secret
{{- else }}generated
{{- end }}
{{- end }}

{{/* Whether the chart runs the webhook in the cluster (everything but url mode). */}}
{{- define "auditwarden.inCluster" -}}
{{- if not .Values.webhook.url }}true{{ end }}
{{- end }}

{{- define "auditwarden.tlsSecretName" -}}
{{- if .Values.tls.existingSecret }}
{{- .Values.tls.existingSecret }}
{{- else }}
{{- printf "%s-tls" (include "auditwarden.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* The Service's in-cluster DNS names: the serving certificate's SANs. */}}
{{- define "auditwarden.dnsNames" -}}
{{- $svc := include "auditwarden.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/* Effective mode of each target: its own, else the global one. */}}
{{- define "auditwarden.mode.configMaps" -}}
{{- default .Values.config.mode .Values.config.targets.configMaps.mode }}
{{- end }}
{{- define "auditwarden.mode.mirrorPods" -}}
{{- default .Values.config.mode .Values.config.targets.mirrorPods.mode }}
{{- end }}

{{/* failurePolicy of each webhook: the configured one, but always Ignore for a target in warn mode. */}}
{{- define "auditwarden.failurePolicy.configMaps" -}}
{{- if eq (include "auditwarden.mode.configMaps" .) "warn" }}Ignore{{ else }}{{ .Values.webhook.configMaps.failurePolicy }}{{ end }}
{{- end }}
{{- define "auditwarden.failurePolicy.mirrorPods" -}}
{{- if eq (include "auditwarden.mode.mirrorPods" .) "warn" }}Ignore{{ else }}{{ .Values.webhook.mirrorPods.failurePolicy }}{{ end }}
{{- end }}

{{/* objectSelector (old clusters) or matchConditions (>= 1.30): which one this render uses. */}}
{{- define "auditwarden.scoping" -}}
{{- $s := .Values.webhook.scoping }}
{{- if eq $s "auto" }}
{{- if semverCompare ">=1.30.0-0" .Capabilities.KubeVersion.Version }}matchConditions{{ else }}objectSelector{{ end }}
{{- else }}{{ $s }}
{{- end }}
{{- end }}

{{/*
CEL: is this ConfigMap one auditwarden judges? Called with the variable name ("object" or
"oldObject"). `data` may be absent, labels may be absent. docs/chart.md "What the condition
sends" explains each line; in short, a value is sent when
  - it names audit.k8s.io or kube-apiserver ('audit.k8s.' and 'kube-apise': CEL charges a
    substring test one unit per ten characters of the value for up to ten characters, two above);
  - it may spell them so that its raw text does not: only a YAML/JSON escape that yields a
    letter, digit, '.' or '-' (\x, \u, \U), an escaped line break right after such a character
    (YAML's double-quoted continuation; matched as a backslash followed by anything but printable
    ASCII or space) and a tag that may be !!binary (!!, !<...>, %TAG) can do that;
  - it has a backslash or '!' and is too large for those precise tests: its size times the number
    of values above 192 KiB (so that they read at most 192 KiB per object), or more than 2048
    values (CEL also charges every step of the loop over the values).
One pass over the values; the cost of the whole condition stays below what the plain marker test
cost before on the largest ConfigMaps (docs/chart.md "Cost").
*/}}
{{- define "auditwarden.cel.configMapRelevant" -}}
(
  {{ . }}.metadata.name == 'kubeadm-config'
  || (has({{ . }}.metadata.labels) && 'auditwarden.io/kind' in {{ . }}.metadata.labels)
  || (has({{ . }}.data) && {{ . }}.data.exists(k,
       {{ . }}.data[k].contains('audit.k8s.') || {{ . }}.data[k].contains('kube-apise')
       || ({{ . }}.data[k].matches(r'\\|!')
           && (size({{ . }}.data) > 2048 || size({{ . }}.data[k]) * size({{ . }}.data) > 196608
               || {{ . }}.data[k].matches(r'\\[xuU]') || {{ . }}.data[k].matches(r'[-.0-9A-Z_a-z]\\[^ -~]')
               || {{ . }}.data[k].matches(r'!!|!<|%TAG')))))
)
{{- end }}

{{/*
Refuse renders that would be unsafe or cannot work, with a message that says what to change.
*/}}
{{- define "auditwarden.validate" -}}
{{- if eq .Release.Namespace "kube-system" }}
{{- fail "auditwarden must not be installed into kube-system: the webhook always exempts its own namespace, and kube-system is where the objects it guards (kubeadm-config, kube-apiserver mirror Pods) live. Install it into its own namespace, e.g. --namespace auditwarden --create-namespace." }}
{{- end }}
{{- if has "kube-system" .Values.webhook.excludeNamespaces }}
{{- fail "webhook.excludeNamespaces must not contain kube-system: that is where the objects auditwarden guards live." }}
{{- end }}
{{- if and .Values.webhook.url .Values.certManager.enabled }}
{{- fail "webhook.url and certManager.enabled do not go together: with webhook.url the chart runs no pods and has no Service to certify; give the out-of-cluster server's CA in tls.caBundle." }}
{{- end }}
{{- if and .Values.certManager.enabled .Values.tls.existingSecret }}
{{- fail "certManager.enabled and tls.existingSecret do not go together: choose one source for the serving certificate." }}
{{- end }}
{{- if and (not .Values.webhook.url) .Values.tls.existingSecret (not .Values.tls.caBundle) }}
{{- fail "tls.existingSecret needs tls.caBundle: the base64 PEM of the CA that signed it (base64 -w0 < ca.crt), so the kube-apiserver can verify the webhook." }}
{{- end }}
{{- if and (not .Values.webhook.configMaps.enabled) (not .Values.webhook.mirrorPods.enabled) }}
{{- fail "webhook.configMaps.enabled and webhook.mirrorPods.enabled are both false: nothing would be checked." }}
{{- end }}
{{- end }}

{{/*
The auditwarden configuration file (config.yaml): the whole `config` values map. values.schema.json
has already checked it against the service's own schema (both generated from
webhook/data/config.schema.json), so every key the service knows can be set and nothing is
re-described here. The one addition: a mounted categoriesCatalog is used unless categoriesFile is set.
*/}}
{{- define "auditwarden.configFile" -}}
{{- $c := deepCopy .Values.config }}
{{- if and (not $c.categoriesFile) .Values.categoriesCatalog }}
{{- $_ := set $c "categoriesFile" "/etc/auditwarden/categories.yaml" }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{/* clientConfig of a webhook entry; called with (dict "root" $ "caBundle" $caBundle). */}}
{{- define "auditwarden.clientConfig" -}}
{{- $root := .root }}
{{- if $root.Values.webhook.url }}
url: {{ $root.Values.webhook.url | quote }}
{{- else }}
service:
  name: {{ include "auditwarden.fullname" $root }}
  namespace: {{ $root.Release.Namespace }}
  path: /validate
  port: {{ $root.Values.service.port }}
{{- end }}
{{- with .caBundle }}
caBundle: {{ . | quote }}
{{- end }}
{{- end }}
