{{/*
fullname prefixes every object's name: the release name when it already
contains the chart name ("webfarm" gives webfarm-controller, webfarm-agent),
else "<release>-<chart>". Cluster-scoped objects carry it too, so that two
releases never fight over one name.
*/}}
{{- define "webfarm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "webfarm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "webfarm.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "webfarm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: webfarm
{{- end -}}

{{/* selectorLabels takes (dict "ctx" $ "component" "controller"). */}}
{{- define "webfarm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webfarm.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "webfarm.controllerName" -}}
{{- printf "%s-controller" (include "webfarm.fullname" .) -}}
{{- end -}}

{{- define "webfarm.agentName" -}}
{{- printf "%s-agent" (include "webfarm.fullname" .) -}}
{{- end -}}

{{- define "webfarm.peerSecretName" -}}
{{- default (printf "%s-peer-key" (include "webfarm.fullname" .)) .Values.peerSecret.name -}}
{{- end -}}

{{- define "webfarm.leaderElectionID" -}}
{{- default (include "webfarm.controllerName" .) .Values.controller.leaderElection.id -}}
{{- end -}}

{{/* farmNamespaces: the namespaces whose Secrets and ConfigMaps the agent reads. */}}
{{- define "webfarm.farmNamespaces" -}}
{{- if .Values.farmNamespaces -}}
{{- toJson .Values.farmNamespaces -}}
{{- else -}}
{{- toJson (list .Release.Namespace) -}}
{{- end -}}
{{- end -}}

{{/* image takes (dict "ctx" $ "image" .Values.x.image). */}}
{{- define "webfarm.image" -}}
{{- printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* agentUser is the user name the API server gives the agent's ServiceAccount. */}}
{{- define "webfarm.agentUser" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "webfarm.agentName" .) -}}
{{- end -}}

{{/* haproxyMetricsOnNode: HAProxy's exporter has a port of its own on the node's address. */}}
{{- define "webfarm.haproxyMetricsOnNode" -}}
{{- and .Values.agent.haproxyMetrics.enabled (eq .Values.agent.haproxyMetrics.via "node") -}}
{{- end -}}

{{/* haproxyMetricsViaAgent: the agent serves HAProxy's exporter at /metrics/haproxy. */}}
{{- define "webfarm.haproxyMetricsViaAgent" -}}
{{- and .Values.agent.haproxyMetrics.enabled (eq .Values.agent.haproxyMetrics.via "agent") -}}
{{- end -}}

{{/*
scrapeAuth: how a ServiceMonitor endpoint reaches a secured metrics port:
HTTPS, with the token of the ServiceAccount Prometheus runs as.
*/}}
{{- define "webfarm.scrapeAuth" -}}
{{- if .Values.metrics.secure }}
scheme: https
# Bind the ServiceAccount Prometheus runs as to the metrics-reader
# ClusterRole (value metrics.scraper.serviceAccount).
bearerTokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token
{{- with .Values.metrics.serviceMonitor.tlsConfig }}
tlsConfig:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "webfarm.haproxyName" -}}
{{- printf "%s-haproxy" (include "webfarm.fullname" .) -}}
{{- end -}}

{{/*
agentPlacement: the agent's nodes: the fronts, and the back-ends of
standalone FailoverIPs.
*/}}
{{- define "webfarm.agentPlacement" -}}
{{- include "webfarm.placement" (dict "ctx" . "nodeSelector" .Values.agent.nodeSelector) -}}
{{- end -}}

{{/*
haproxyPlacement: the fronts alone (haproxy.nodeSelector, the agent's by
default), with the agent's affinity, tolerations and priority.
*/}}
{{- define "webfarm.haproxyPlacement" -}}
{{- include "webfarm.placement" (dict "ctx" . "nodeSelector" (.Values.haproxy.nodeSelector | default .Values.agent.nodeSelector)) -}}
{{- end -}}

{{/* placement: the agent's affinity, tolerations and priority, on the nodes
that nodeSelector selects. */}}
{{- define "webfarm.placement" -}}
{{- with .ctx.Values }}
{{- with $.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .agent.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .agent.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .agent.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* cleanupHook: the annotations of every object of the uninstall cleanup. */}}
{{- define "webfarm.cleanupHook" -}}
helm.sh/hook: post-delete
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end -}}
