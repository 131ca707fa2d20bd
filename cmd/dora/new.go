package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/dora-go/dora/internal/templates"
	"github.com/spf13/cobra"
)

// sourceDir is the dora checkout bin/dora was built from (set by the
// Makefile with -X main.sourceDir=...). Generated projects use its Go
// module, C headers and libraries until dora is published.
var sourceDir = ""

// newProjectCommands create dataflows, nodes and operators from templates.
func newProjectCommands() []*cobra.Command {
	return []*cobra.Command{
		projectCmd("new NAME", "Create a dataflow (or, with --kind, a node or operator) project", "", "go", groupDevelop),
		parent("operator", "Work on operators", projectCmd("new NAME", "Create an operator project: source, build command and a dataflow running it", "operator", "c", "")),
		parent("node", "Work on custom nodes", projectCmd("new NAME", "Create a custom node project: source, build command and a dataflow running it", "node", "go", "")),
	}
}

// projectCmd renders a template; kind is fixed by the parent command, or
// chosen with --kind when empty.
func projectCmd(use, short, kind, defaultLang, group string) *cobra.Command {
	var lang, doraSrc, dir string
	chosenKind := kind
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Args:    cobra.ExactArgs(1),
		GroupID: group,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if lang == "go" && chosenKind == "operator" {
				lang = "wasm" // Go operators run as WASM guests
			}
			src, err := doraCheckout(doraSrc)
			if err != nil {
				return err
			}
			dst := filepath.Join(dir, name)
			written, err := templates.Render(chosenKind, lang, dst, templates.Data{
				Name: name, DoraSrc: src, GoVersion: strings.TrimPrefix(runtime.Version(), "go")[:4],
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, w := range written {
				fmt.Fprintf(out, "created %s\n", filepath.Join(dst, w))
			}
			if _, err := os.Stat(filepath.Join(dst, "go.mod")); err == nil {
				tidy := exec.Command("go", "mod", "tidy")
				tidy.Dir = dst
				if b, err := tidy.CombinedOutput(); err != nil {
					return fmt.Errorf("go mod tidy in %s: %w\n%s", dst, err, b)
				}
				fmt.Fprintf(out, "ran go mod tidy in %s\n", dst)
			}
			fmt.Fprintf(out, "next: cd %s && dora build dataflow.yml && dora run dataflow.yml\n", dst)
			return nil
		},
	}
	langs := templates.Languages()
	if kind == "" {
		cmd.Flags().StringVar(&chosenKind, "kind", "dataflow", "what to create: dataflow, node or operator")
	}
	help := "language of the template"
	if kind != "" {
		help += " (" + strings.Join(langs[kind], ", ") + ")"
	}
	cmd.Flags().StringVar(&lang, "lang", defaultLang, help)
	cmd.Flags().StringVar(&doraSrc, "dora-src", "", "the dora checkout the project uses (default: $DORA_SRC, or the one this binary was built from)")
	cmd.Flags().StringVar(&dir, "dir", ".", "create the project's folder in this `folder`")
	return cmd
}

// doraCheckout finds the dora source tree generated projects build
// against, and checks it is one.
func doraCheckout(flag string) (string, error) {
	src := flag
	if src == "" {
		src = os.Getenv("DORA_SRC")
	}
	if src == "" {
		src = sourceDir
	}
	if src == "" {
		return "", fmt.Errorf("which dora checkout should the project use? pass --dora-src or set DORA_SRC (binaries built with `make build` know theirs)")
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil || !strings.Contains(string(mod), "module github.com/dora-go/dora\n") {
		return "", fmt.Errorf("%s is not a dora checkout (no go.mod of github.com/dora-go/dora)", abs)
	}
	return abs, nil
}
