// A CoreDNS with only the plugins the real node of `make cluster-up` needs. It serves the
// cluster domain from the API server and answers everything else from the template plugin
// (NXDOMAIN): there is no forward plugin, so no query ever leaves the machine.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/template"
)

// The order plugins run in, as in CoreDNS's plugin.cfg (which this build replaces).
var directives = []string{
	"bind", "ready", "health", "errors", "log", "loadbalance", "cache", "template", "kubernetes",
}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
