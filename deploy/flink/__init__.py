"""The one face of Flink: its REST API (rest), PyFlink job submission (pyjobs), the allowed job
entries (entries), job metrics for the autoscaler (jobmetrics), health probes (health), facts pure
code needs (states), and the controller's runtime that acts on a Flink session cluster (runtime,
with observations, inputs and submission). Nothing else talks to Flink."""
