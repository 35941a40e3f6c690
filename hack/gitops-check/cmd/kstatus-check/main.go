// Command kstatus-check asks Flux's own code what it concludes about objects.
//
//	kstatus-check compute < objects.json
//	    stdin: one object or a JSON array of objects. stdout: per object
//	    {"sigs": {"status","message"}, "flux": {"status","message"}}: the verdicts of
//	    sigs.k8s.io/cli-utils and github.com/fluxcd/cli-utils (Flux's fork) kstatus Compute.
//	kstatus-check wait [--timeout 5s] [--interval 250ms] [--fail-fast] GROUP/KIND/NAMESPACE/NAME...
//	    github.com/fluxcd/pkg/ssa ResourceManager.WaitForSet on the cluster of $KUBECONFIG, with
//	    the status poller kustomize-controller builds for `wait: true` (fluxcd/cli-utils polling,
//	    no custom status readers). Exit 0 when the set is ready, 1 otherwise (Flux's error
//	    text on stderr). NAMESPACE is empty for cluster-scoped objects (group/Kind//name).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	fluxpolling "github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	fluxstatus "github.com/fluxcd/cli-utils/pkg/kstatus/status"
	fluxobject "github.com/fluxcd/cli-utils/pkg/object"
	"github.com/fluxcd/pkg/ssa"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	sigsstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type result struct {
	Sigs  *verdict `json:"sigs,omitempty"`
	Flux  *verdict `json:"flux,omitempty"`
	Error string   `json:"error,omitempty"`
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "compute":
		compute()
	case "wait":
		os.Exit(wait(os.Args[2:]))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: kstatus-check compute < objects.json | kstatus-check wait [flags] GROUP/KIND/NAMESPACE/NAME...")
	os.Exit(2)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus-check:", err)
	os.Exit(2)
}

func compute() {
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	trimmed := strings.TrimSpace(string(input))
	var raws []json.RawMessage
	if strings.HasPrefix(trimmed, "[") {
		if err := json.Unmarshal(input, &raws); err != nil {
			fail(err)
		}
	} else {
		raws = []json.RawMessage{json.RawMessage(input)}
	}
	results := make([]result, 0, len(raws))
	for _, raw := range raws {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			results = append(results, result{Error: err.Error()})
			continue
		}
		var r result
		if s, err := sigsstatus.Compute(obj); err != nil {
			r.Error = "sigs: " + err.Error()
		} else {
			r.Sigs = &verdict{string(s.Status), s.Message}
		}
		if f, err := fluxstatus.Compute(obj); err != nil {
			r.Error += "flux: " + err.Error()
		} else {
			r.Flux = &verdict{string(f.Status), f.Message}
		}
		results = append(results, r)
	}
	out := json.NewEncoder(os.Stdout)
	if strings.HasPrefix(trimmed, "[") {
		err = out.Encode(results)
	} else {
		err = out.Encode(results[0])
	}
	if err != nil {
		fail(err)
	}
}

func wait(args []string) int {
	flags := flag.NewFlagSet("wait", flag.ExitOnError)
	timeout := flags.Duration("timeout", 5*time.Second, "give up after")
	interval := flags.Duration("interval", 250*time.Millisecond, "poll interval")
	failFast := flags.Bool("fail-fast", false, "return as soon as an object is Failed")
	_ = flags.Parse(args)
	var set fluxobject.ObjMetadataSet
	for _, ref := range flags.Args() {
		parts := strings.Split(ref, "/")
		if len(parts) != 4 {
			fail(fmt.Errorf("%q is not GROUP/KIND/NAMESPACE/NAME", ref))
		}
		set = append(set, fluxobject.ObjMetadata{
			GroupKind: schema.GroupKind{Group: parts[0], Kind: parts[1]},
			Namespace: parts[2],
			Name:      parts[3],
		})
	}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(
		clientcmd.NewDefaultClientConfigLoadingRules(), &clientcmd.ConfigOverrides{})
	config, err := loader.ClientConfig()
	if err != nil {
		fail(err)
	}
	httpClient, err := rest.HTTPClientFor(config)
	if err != nil {
		fail(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(config, httpClient)
	if err != nil {
		fail(err)
	}
	kube, err := client.New(config, client.Options{Mapper: mapper})
	if err != nil {
		fail(err)
	}
	poller := fluxpolling.NewStatusPoller(kube, mapper, fluxpolling.Options{})
	manager := ssa.NewResourceManager(kube, poller, ssa.Owner{
		Field: "kustomize-controller", Group: "kustomize.toolkit.fluxcd.io",
	})
	started := time.Now()
	err = manager.WaitForSet(set, ssa.WaitOptions{Interval: *interval, Timeout: *timeout, FailFast: *failFast})
	elapsed := time.Since(started)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s\n", err)
		fmt.Printf("{\"ready\": false, \"seconds\": %.3f}\n", elapsed.Seconds())
		return 1
	}
	fmt.Printf("{\"ready\": true, \"seconds\": %.3f}\n", elapsed.Seconds())
	return 0
}
