package main

import (
	"fmt"
	"path/filepath"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/cmd/rampart/internal/pbtest"
)

func newPlaybookTestCmd() *cobra.Command {
	var runFilter string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [FILE|DIR]...",
		Short: "Run playbook tests (*.test.yaml): mocked integrations, injected approvals, expected steps and actions",
		Long: `test runs the cases of playbook test files (NAME.test.yaml next to NAME.yaml; a
directory means every test file in it). Each case runs the real interpreter on
Temporal's test environment, offline, with timers skipped: an alert fixture, mocked
answers per step or operation, approvals to inject, and the expected status,
message, steps in order, actions with their inputs, and outputs. A failing case
prints what differs. The exit status is 1 when any case fails. Without arguments
it tests examples/playbooks.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{filepath.Join(app.ExamplesDir(), "playbooks")}
			}
			var filter *regexp.Regexp
			if runFilter != "" {
				var err error
				if filter, err = regexp.Compile(runFilter); err != nil {
					return fmt.Errorf("--run: %w", err)
				}
			}
			files, err := pbtest.Files(args)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return fmt.Errorf("no %s files in %v", pbtest.Suffix, args)
			}
			out := cmd.OutOrStdout()
			passed, failed := 0, 0
			for _, f := range files {
				results, err := pbtest.RunFile(f, filter)
				if err != nil {
					fmt.Fprintf(out, "FAIL  %s\n      %v\n", f, err)
					failed++
					continue
				}
				for _, r := range results {
					if r.OK() {
						passed++
						if verbose {
							fmt.Fprintf(out, "ok    %s: %s (%s)\n", f, r.Name, r.Duration.Round(1e6))
						}
						continue
					}
					failed++
					fmt.Fprintf(out, "FAIL  %s: %s\n", f, r.Name)
					if r.Err != nil {
						fmt.Fprintf(out, "      %v\n", r.Err)
					}
					for _, d := range r.Failures {
						fmt.Fprintf(out, "      %s\n", d)
					}
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d file(s): %d passed, %d failed\n", len(files), passed, failed)
			if failed > 0 {
				return exitError(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&runFilter, "run", "", "only the cases whose name matches this regular expression")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every case, not only failures")
	return cmd
}
