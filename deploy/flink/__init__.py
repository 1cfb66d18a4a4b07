"""The one face of Flink: its REST API (rest), PyFlink job submission (pyjobs), the allowed job
entries (entries), job metrics for the autoscaler (jobmetrics), health probes (health), and the
controller's runtime that acts on a Flink session cluster (runtime). Nothing else talks to Flink."""
