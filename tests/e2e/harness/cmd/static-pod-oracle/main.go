// Command static-pod-oracle answers "would the kubelet run this static Pod manifest?" with the
// kubelet's own decoding and validation, without a kubelet.
//
// It does what pkg/kubelet/config/common.go tryDecodeSinglePod does with a manifest file:
// utilyaml.ToJSON, decoding with legacyscheme's UniversalDecoder, the name check, the defaults of
// applyDefaults that validation reads (name suffixed with the node name, namespace, node name, UID),
// and validation.ValidatePodCreate with podutil's options; the refusal is the kubelet's
// fmt.Errorf("invalid pod: %v", errs).
//
//	static-pod-oracle     reads {"manifest": "<YAML>"} lines, answers {"ok": bool, "error": "..."}
//
// It is test infrastructure for auditwarden's differential tests, not part of the product.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	podutil "k8s.io/kubernetes/pkg/api/pod"
	api "k8s.io/kubernetes/pkg/apis/core"
	_ "k8s.io/kubernetes/pkg/apis/core/install"
	"k8s.io/kubernetes/pkg/apis/core/validation"
)

const nodeName = "oracle-node"

func check(data []byte) error {
	j, err := utilyaml.ToJSON(data)
	if err != nil {
		return err
	}
	obj, err := runtime.Decode(legacyscheme.Codecs.UniversalDecoder(), j)
	if err != nil {
		return err
	}
	pod, ok := obj.(*api.Pod)
	if !ok {
		return fmt.Errorf("invalid pod: %#v", obj)
	}
	if pod.Name == "" {
		return fmt.Errorf("invalid pod: name is needed for the pod")
	}
	pod.UID = "oracle"
	pod.Name = pod.Name + "-" + nodeName
	if pod.Namespace == "" {
		pod.Namespace = "default"
	}
	pod.Spec.NodeName = nodeName
	opts := podutil.GetValidationOptionsFromPodSpecAndMeta(&pod.Spec, nil, &pod.ObjectMeta, nil)
	if errs := validation.ValidatePodCreate(pod, opts); len(errs) > 0 {
		return fmt.Errorf("invalid pod: %v", errs)
	}
	return nil
}

type answer struct {
	OK    bool   `json:"ok"`
	Error string `json:"error"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var q struct {
			Manifest string `json:"manifest"`
		}
		if err := json.Unmarshal(in.Bytes(), &q); err != nil {
			fmt.Fprintln(os.Stderr, "bad question:", err)
			os.Exit(2)
		}
		a := answer{OK: true}
		if err := check([]byte(q.Manifest)); err != nil {
			a = answer{OK: false, Error: err.Error()}
		}
		if err := out.Encode(a); err != nil {
			os.Exit(1)
		}
	}
}
