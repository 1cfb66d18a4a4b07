// Flink's Prometheus reporter, listening on one address instead of every interface.
//
// Flink's own PrometheusReporter (flink-metrics-prometheus) takes only a port and starts its
// HTTP server on the wildcard address; it has no bind-host option. This factory is the same
// reporter with a `host` option (metrics.reporter.prom.host), so that the local stack's
// /metrics endpoints listen on loopback unless the user opens them (EDDYLINE_BIND_HOST).
// deploy/local/stack/reporter.py compiles it into a jar beside flink-metrics-prometheus in the
// stack's plugin folder. It lives in the reporter's package because the registry it serves is
// package-private in AbstractPrometheusReporter.
package org.apache.flink.metrics.prometheus;

import io.prometheus.client.exporter.HTTPServer;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.Iterator;
import java.util.Properties;
import org.apache.flink.metrics.reporter.MetricReporter;
import org.apache.flink.metrics.reporter.MetricReporterFactory;
import org.apache.flink.util.PortRange;

public class BoundPrometheusReporterFactory implements MetricReporterFactory {

    @Override
    public MetricReporter createMetricReporter(Properties properties) {
        String host = properties.getProperty("host", "127.0.0.1");
        PortRange ports = new PortRange(properties.getProperty("port", "9249"));
        return new BoundPrometheusReporter(host, ports);
    }

    static final class BoundPrometheusReporter extends AbstractPrometheusReporter {
        private final HTTPServer server;

        BoundPrometheusReporter(String host, PortRange ports) {
            HTTPServer started = null;
            Iterator<Integer> candidates = ports.getPortsIterator();
            while (started == null && candidates.hasNext()) {
                int port = candidates.next();
                try {
                    started = new HTTPServer(new InetSocketAddress(host, port), registry);
                    log.info("Started PrometheusReporter HTTP server on {}:{}.", host, port);
                } catch (IOException e) {
                    log.debug("Could not start PrometheusReporter HTTP server on {}:{}.", host, port, e);
                }
            }
            if (started == null) {
                throw new RuntimeException(
                        "Could not start PrometheusReporter HTTP server on " + host + " at any of the ports " + ports);
            }
            server = started;
        }

        @Override
        public void close() {
            server.stop();
            super.close();
        }
    }
}
