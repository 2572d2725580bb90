package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/integrations"
	"github.com/rampart-soar/rampart/playbook"
	"github.com/rampart-soar/rampart/playbook/lint"
)

func newPlaybookCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "playbook", Short: "Author and manage playbooks: lint, test, apply, versions, enable and disable"}
	cmd.AddCommand(newPlaybookLintCmd(), newPlaybookApplyCmd(), newPlaybookListCmd(), newPlaybookShowCmd(),
		newPlaybookDiffCmd(), newPlaybookEnableCmd(true), newPlaybookEnableCmd(false), newPlaybookExportCmd(),
		newPlaybookTestCmd(), newPlaybookReplayCmd(), newPlaybookRunCmd(), newPlaybookOperationsCmd(), newPlaybookFunctionsCmd())
	return cmd
}

func newPlaybookLintCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lint [FILE|DIR]...",
		Short: "Check playbooks: schema, step structure, operations and inputs, and every expression's types",
		Long: `lint checks playbook files (YAML or JSON; a directory means every playbook in it,
test files excepted) and prints each problem as file:line:column: message. Calls
between the playbooks given are checked too. The exit status is 1 when any
playbook has a problem. Without arguments it lints examples/playbooks.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{filepath.Join(app.ExamplesDir(), "playbooks")}
			}
			results, err := lint.Files(args...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			problems := 0
			if asJSON {
				type fileResult struct {
					File        string            `json:"file"`
					Name        string            `json:"name,omitempty"`
					Diagnostics []lint.Diagnostic `json:"diagnostics"`
				}
				var all []fileResult
				for _, r := range results {
					fr := fileResult{File: r.File, Diagnostics: r.Problems}
					if fr.Diagnostics == nil {
						fr.Diagnostics = []lint.Diagnostic{}
					}
					if r.Playbook != nil {
						fr.Name = r.Playbook.Name
					}
					problems += len(r.Problems)
					all = append(all, fr)
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(all); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					for _, p := range r.Problems {
						fmt.Fprintln(out, p)
					}
					problems += len(r.Problems)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%d playbook(s), %d problem(s)\n", len(results), problems)
			}
			if problems > 0 {
				return exitError(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the diagnostics as JSON")
	return cmd
}

func newPlaybookOperationsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "operations",
		Short: "List the integration operations a step can use, with their side-effect class",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "OPERATION\tSIDE EFFECT\tINVERSE\tINPUTS")
			for _, op := range integrations.Operations() {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", op.Name, op.SideEffect, op.Inverse, inputNames(op.Input))
			}
			return tw.Flush()
		},
	}
}

func inputNames(schema map[string]any) string {
	props, _ := schema["properties"].(map[string]any)
	required, _ := schema["required"].([]any)
	names := ""
	for _, name := range slices.Sorted(maps.Keys(props)) {
		if names != "" {
			names += ", "
		}
		names += name
		if slices.Contains(required, any(name)) {
			names += "*"
		}
	}
	return names
}

func newPlaybookFunctionsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "functions",
		Short: "List the functions expressions can call, beyond expr-lang's own",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			for _, f := range playbook.Library {
				fmt.Fprintf(tw, "%s\t%s\n", f.Signature, f.Doc)
			}
			return tw.Flush()
		},
	}
}
