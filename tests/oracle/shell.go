package main

import (
	"bytes"
	"path"
	"strconv"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"
)

// shellInput asks for the kube-apiserver arguments of "sh -c SCRIPT ARGS..." as mvdan.cc/sh
// (a POSIX/bash parser and expander) reads them, with no command run: command substitution
// is an error, and there is no globbing.
type shellInput struct {
	Script string            `json:"script"`
	Env    map[string]string `json:"env"`
	Args   []string          `json:"args"`
}

type shellOutput struct {
	Argv  []string `json:"argv"`
	Found bool     `json:"found"`
	Error string   `json:"error"`
}

// params is the environment of the script: the container's env and the positional parameters.
type params struct {
	env  map[string]string
	args []string // $0 $1 ...
}

func (p params) Get(name string) expand.Variable {
	switch name {
	case "@", "*":
		list := []string{}
		if len(p.args) > 1 {
			list = p.args[1:]
		}
		return expand.Variable{Set: true, Kind: expand.Indexed, List: list}
	case "#":
		n := len(p.args) - 1
		if n < 0 {
			n = 0
		}
		return expand.Variable{Set: true, Kind: expand.String, Str: strconv.Itoa(n)}
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n < len(p.args) {
			return expand.Variable{Set: true, Kind: expand.String, Str: p.args[n]}
		}
		return expand.Variable{}
	}
	if v, ok := p.env[name]; ok {
		return expand.Variable{Set: true, Exported: true, Kind: expand.String, Str: v}
	}
	return expand.Variable{}
}

func (p params) Each(fn func(name string, vr expand.Variable) bool) {
	for k := range p.env {
		if !fn(k, p.Get(k)) {
			return
		}
	}
}

func shellAnswer(in shellInput) shellOutput {
	file, err := syntax.NewParser().Parse(bytes.NewReader([]byte(in.Script)), "")
	if err != nil {
		return shellOutput{Error: err.Error()}
	}
	cfg := &expand.Config{Env: params{in.Env, in.Args}}
	var out shellOutput
	syntax.Walk(file, func(node syntax.Node) bool {
		if out.Found || out.Error != "" {
			return false
		}
		call, ok := node.(*syntax.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		fields, err := expand.Fields(cfg, call.Args...)
		if err != nil {
			// Only the kube-apiserver command matters: judge the error if its name is literal.
			if lit := call.Args[0].Lit(); lit != "" && (path.Base(lit) == "kube-apiserver" || lit == "exec") {
				out.Error = err.Error()
			}
			return true
		}
		if len(fields) > 0 && fields[0] == "exec" {
			fields = fields[1:]
		}
		if len(fields) > 0 && path.Base(fields[0]) == "kube-apiserver" {
			out.Found, out.Argv = true, fields[1:]
			return false
		}
		return true
	})
	if out.Argv == nil {
		out.Argv = []string{}
	}
	return out
}
