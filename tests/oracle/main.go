// Command auditwarden-oracle answers audit-policy questions with kube-apiserver's own code.
//
// It reads JSON objects, one per line, on stdin.  A line {"yaml": "<text>"} is answered with
// {"json": "<sigs.k8s.io/yaml.YAMLToJSON of the text>" or null, "error": "..."}; any other is
// a policy question; {"shell": {"script", "env", "args"}} is answered by shell.go; any other is
// a policy question:
//
//	{"policy": "<policy file text>", "requests": [ATTRS, ...], "validateOnly": false}
//
// loads the policy with k8s.io/apiserver/pkg/audit/policy.LoadPolicyFromBytes (strict decode,
// lenient fallback, group-version allow-list, ValidatePolicy, zero-rule check) and evaluates
// every request with NewPolicyRuleEvaluator, writing one JSON line per input line:
//
//	{"valid": true, "error": "", "results": [{"level": "Metadata", "omitStages": [...], "omitManagedFields": false}]}
//
// ATTRS has the shape of the request entries of tests/data/conformance/checker-conformance.yaml.
// It is test infrastructure for auditwarden's differential tests, not part of the product.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

type userJSON struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups"`
}

type attrsJSON struct {
	User              *userJSON `json:"user"`
	Verb              string    `json:"verb"`
	Namespace         string    `json:"namespace"`
	APIGroup          string    `json:"apiGroup"`
	APIVersion        string    `json:"apiVersion"`
	Resource          string    `json:"resource"`
	Subresource       string    `json:"subresource"`
	Name              string    `json:"name"`
	Path              string    `json:"path"`
	IsResourceRequest bool      `json:"isResourceRequest"`
}

type input struct {
	// YAML, when set, asks for sigs.k8s.io/yaml.YAMLToJSON of its text instead of a policy.
	YAML *string `json:"yaml"`
	// Shell, when set, asks for the kube-apiserver arguments of a sh -c script (shell.go).
	Shell        *shellInput `json:"shell"`
	Policy       string      `json:"policy"`
	Requests     []attrsJSON `json:"requests"`
	ValidateOnly bool        `json:"validateOnly"`
}

type result struct {
	Level             string   `json:"level"`
	OmitStages        []string `json:"omitStages"`
	OmitManagedFields bool     `json:"omitManagedFields"`
}

type output struct {
	Valid   bool     `json:"valid"`
	Error   string   `json:"error"`
	Results []result `json:"results"`
	// Decoded is the loaded (internal) Policy marshalled with Go's field names.
	Decoded json.RawMessage `json:"decoded,omitempty"`
}

type yamlOutput struct {
	JSON  *string `json:"json"`
	Error string  `json:"error"`
}

// toJSON is what every Kubernetes YAML reader does first: sigs.k8s.io/yaml (its go-yaml v2
// fork) parses the first document and converts it to JSON.
func toJSON(text string) yamlOutput {
	j, err := yaml.YAMLToJSON([]byte(text))
	if err != nil {
		return yamlOutput{Error: err.Error()}
	}
	s := string(j)
	return yamlOutput{JSON: &s}
}

func answer(in input) output {
	p, err := policy.LoadPolicyFromBytes([]byte(in.Policy))
	if err != nil {
		return output{Valid: false, Error: err.Error(), Results: []result{}}
	}
	out := output{Valid: true, Results: []result{}}
	if decoded, err := json.Marshal(p); err == nil {
		out.Decoded = decoded
	}
	if in.ValidateOnly {
		return out
	}
	evaluator := policy.NewPolicyRuleEvaluator(p)
	for _, a := range in.Requests {
		rec := authorizer.AttributesRecord{
			Verb:            a.Verb,
			Namespace:       a.Namespace,
			APIGroup:        a.APIGroup,
			APIVersion:      a.APIVersion,
			Resource:        a.Resource,
			Subresource:     a.Subresource,
			Name:            a.Name,
			ResourceRequest: a.IsResourceRequest,
			Path:            a.Path,
		}
		if a.User != nil {
			rec.User = &user.DefaultInfo{Name: a.User.Name, Groups: a.User.Groups}
		}
		cfg := evaluator.EvaluatePolicyRule(rec)
		stages := make([]string, 0, len(cfg.OmitStages))
		for _, s := range cfg.OmitStages {
			stages = append(stages, string(s))
		}
		sort.Strings(stages)
		out.Results = append(out.Results, result{
			Level: string(cfg.Level), OmitStages: stages, OmitManagedFields: cfg.OmitManagedFields,
		})
	}
	return out
}

func main() {
	// The lenient-fallback warning goes to klog: keep stdout for the JSON lines only.
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("alsologtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)

	reader := bufio.NewReaderSize(os.Stdin, 1<<20)
	writer := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(writer)
	for {
		line, err := reader.ReadBytes('\n')
		if len(line) > 0 {
			var in input
			if jerr := json.Unmarshal(line, &in); jerr != nil {
				_ = enc.Encode(map[string]string{"fatal": fmt.Sprintf("bad input line: %v", jerr)})
			} else if in.Shell != nil {
				_ = enc.Encode(shellAnswer(*in.Shell))
			} else if in.YAML != nil {
				_ = enc.Encode(toJSON(*in.YAML))
			} else {
				_ = enc.Encode(answer(in))
			}
			_ = writer.Flush()
		}
		if err != nil {
			return
		}
	}
}
