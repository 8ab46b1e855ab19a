// Command openshift-audit-oracle renders an OpenShift APIServer's spec.audit into the audit
// Policy exactly as OpenShift's operators do: it calls GetAuditPolicy of
// github.com/openshift/library-go/pkg/operator/apiserver/audit (pinned in go.mod) and sets Kind
// and APIVersion as pkg/operator/apiserver/controller/auditpolicy's syncAuditPolicy does before
// writing the policy into its ConfigMap.
//
// One JSON line in, one JSON line out:
//
//	in:  the spec.audit object, e.g. {"profile": "Default", "customRules": [{"group": "g", "profile": "None"}]}
//	     (decoded into configv1.Audit with encoding/json, as the operator's informer decodes the object)
//	out: {"policy": <the Policy, encoding/json>, "yaml": "<sigs.k8s.io/yaml.Marshal of it: the ConfigMap's policy.yaml>"}
//	     or {"error": "<GetAuditPolicy's error>"}; {"fatal": "..."} when the input line is not JSON
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	configv1 "github.com/openshift/api/config/v1"
	"github.com/openshift/library-go/pkg/operator/apiserver/audit"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"sigs.k8s.io/yaml"
)

type answer struct {
	Policy json.RawMessage `json:"policy,omitempty"`
	YAML   string          `json:"yaml,omitempty"`
	Error  string          `json:"error,omitempty"`
	Fatal  string          `json:"fatal,omitempty"`
}

func render(line []byte) answer {
	var spec configv1.Audit
	if err := json.Unmarshal(line, &spec); err != nil {
		return answer{Fatal: err.Error()}
	}
	p, err := audit.GetAuditPolicy(spec)
	if err != nil {
		return answer{Error: err.Error()}
	}
	desired := p.DeepCopy()
	desired.Kind = "Policy"
	desired.APIVersion = auditv1.SchemeGroupVersion.String()
	js, err := json.Marshal(desired)
	if err != nil {
		return answer{Fatal: err.Error()}
	}
	bs, err := yaml.Marshal(desired)
	if err != nil {
		return answer{Fatal: err.Error()}
	}
	return answer{Policy: js, YAML: string(bs)}
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		if err := out.Encode(render(in.Bytes())); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
