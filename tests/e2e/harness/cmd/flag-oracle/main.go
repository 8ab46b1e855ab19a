// Command flag-oracle answers "would kube-apiserver accept this command line?" with
// kube-apiserver's own flag set, without starting a server.
//
// It builds the flag set exactly as cmd/kube-apiserver/app.NewAPIServerCommand does
// (options.NewServerRunOptions().Flags(), verflag, globalflag) under component-base/cli's
// WordSepNormalizeFunc, parses an argv with pflag, applies cobra's --help and the command's
// Args check, stops where RunE would print the version and exit (--version, --version=raw),
// and runs the audit options' own Validate().
//
//	flag-oracle dump            prints the flag table: {"kubernetes": {"module", "version", "sum"},
//	                            "flags": [{"name", "type", "default", "noOptDefault", "shorthand"}]}
//	                            (the provenance is the k8s.io/kubernetes module it was built with,
//	                            from the binary's build info)
//	flag-oracle                 reads {"argv": [...]} lines, answers {"ok": bool, "error": "...", "values": {...}}
//
// "values" holds the String() of every flag that was set, for comparing decoded values.
// It is test infrastructure for auditwarden's differential tests, not part of the product.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/cli/globalflag"
	"k8s.io/component-base/logs"
	"k8s.io/component-base/version/verflag"
	"k8s.io/klog/v2"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

type flagInfo struct {
	Name         string `json:"name"`
	Type         string `json:"type"`
	Default      string `json:"default"`
	NoOptDefault string `json:"noOptDefault"`
	Shorthand    string `json:"shorthand"`
}

type answer struct {
	OK     bool              `json:"ok"`
	Error  string            `json:"error"`
	Values map[string]string `json:"values"`
}

// flagSet mirrors NewAPIServerCommand: the named flag sets, verflag and the global flags.
func flagSet() (*options.ServerRunOptions, *pflag.FlagSet) {
	s := options.NewServerRunOptions()
	named := s.Flags()
	verflag.AddFlags(named.FlagSet("global"))
	globalflag.AddGlobalFlags(named.FlagSet("global"), "kube-apiserver", logs.SkipLoggingConfigurationFlags())
	fs := pflag.NewFlagSet("kube-apiserver", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetNormalizeFunc(cliflag.WordSepNormalizeFunc) // component-base/cli.Run: SetGlobalNormalizationFunc
	for _, f := range named.FlagSets {
		fs.AddFlagSet(f)
	}
	return s, fs
}

func check(argv []string) answer {
	s, fs := flagSet()
	// --version is verflag's package-level flag, shared by every FlagSet: reset it.
	if f := fs.Lookup("version"); f != nil {
		_ = f.Value.Set("false")
		f.Changed = false
	}
	if err := fs.Parse(argv); err != nil {
		return answer{Error: err.Error()}
	}
	if help, _ := fs.GetBool("help"); help { // cobra's execute: help before anything else
		return answer{Error: "--help: kube-apiserver prints its help and exits instead of serving"}
	}
	for _, arg := range fs.Args() { // NewAPIServerCommand's Args
		if len(arg) > 0 {
			return answer{Error: fmt.Sprintf("%q does not take any arguments, got %q", "kube-apiserver", fs.Args())}
		}
	}
	// RunE's verflag.PrintAndExitIfRequested: --version (true) and --version=raw print and exit.
	if v := fs.Lookup("version").Value.String(); v == "true" || v == "raw" {
		return answer{Error: "--version: kube-apiserver prints its version and exits instead of serving"}
	}
	values := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { values[f.Name] = f.Value.String() })
	if errs := s.Audit.Validate(); len(errs) > 0 {
		return answer{Error: errs[0].Error(), Values: values}
	}
	return answer{OK: true, Values: values}
}

type module struct {
	Path    string `json:"module"`
	Version string `json:"version"`
	Sum     string `json:"sum"`
}

type table struct {
	Kubernetes module     `json:"kubernetes"`
	Flags      []flagInfo `json:"flags"`
}

// kubernetes is the k8s.io/kubernetes module this binary was built with (go.sum's h1: hash).
func kubernetes() module {
	info, ok := debug.ReadBuildInfo()
	if ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/kubernetes" {
				return module{dep.Path, dep.Version, dep.Sum}
			}
		}
	}
	fmt.Fprintln(os.Stderr, "flag-oracle: no k8s.io/kubernetes in the build info")
	os.Exit(1)
	return module{}
}

func dump() {
	_, fs := flagSet()
	var all []flagInfo
	fs.VisitAll(func(f *pflag.Flag) {
		all = append(all, flagInfo{f.Name, f.Value.Type(), f.DefValue, f.NoOptDefVal, f.Shorthand})
	})
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	_ = enc.Encode(table{kubernetes(), all})
}

func main() {
	klog.SetOutput(io.Discard)
	if len(os.Args) > 1 && os.Args[1] == "dump" {
		dump()
		return
	}
	reader := bufio.NewReaderSize(os.Stdin, 1<<20)
	writer := bufio.NewWriter(os.Stdout)
	enc := json.NewEncoder(writer)
	for {
		line, err := reader.ReadBytes('\n')
		if len(line) > 0 {
			var in struct {
				Argv []string `json:"argv"`
			}
			if jerr := json.Unmarshal(line, &in); jerr != nil {
				_ = enc.Encode(map[string]string{"fatal": fmt.Sprintf("bad input line: %v", jerr)})
			} else {
				_ = enc.Encode(check(in.Argv))
			}
			_ = writer.Flush()
		}
		if err != nil {
			return
		}
	}
}
