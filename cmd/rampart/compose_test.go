package main

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/rampart-soar/rampart/cmd/rampart/internal/app"
	"github.com/rampart-soar/rampart/server/ingest"
)

type composeFile struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       any            `yaml:"build"`
		Command     []string       `yaml:"command"`
		Environment map[string]any `yaml:"environment"`
		Ports       []string       `yaml:"ports"`
		DependsOn   map[string]any `yaml:"depends_on"`
		Configs     []struct {
			Source string `yaml:"source"`
		} `yaml:"configs"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
	Configs map[string]any `yaml:"configs"`
}

// TestComposeFile checks docker-compose.yml against the binary it runs: every
// service the production shape needs, pinned images, real subcommands and
// environment variables, dependencies that exist, ports on loopback. With a docker
// compose plugin at hand it also runs `docker compose config`.
func TestComposeFile(t *testing.T) {
	raw, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c composeFile
	if err := yaml.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgresql", "temporal-schema", "temporal", "temporal-ui", "rampart-migrate", "rampart-server", "rampart-worker"} {
		if _, ok := c.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	known := supportedEnv(t)
	root := newRootCmd(nil, nil)
	for name, s := range c.Services {
		if s.Image == "" && s.Build == nil {
			t.Errorf("%s: no image and no build", name)
		}
		if s.Build == nil && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned", name, s.Image)
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on unknown service %s", name, dep)
			}
		}
		for _, p := range s.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond loopback", name, p)
			}
		}
		for _, cfg := range s.Configs {
			if _, ok := c.Configs[cfg.Source]; !ok {
				t.Errorf("%s uses unknown config %s", name, cfg.Source)
			}
		}
		if s.Build == nil {
			continue
		}
		if len(s.Command) == 0 {
			t.Errorf("%s: rampart service without a command", name)
			continue
		}
		if cmd, _, err := root.Find(s.Command); err != nil || cmd == root {
			t.Errorf("%s: %q is not a rampart command", name, s.Command[0])
		} else {
			for _, arg := range s.Command[1:] {
				if flag, ok := strings.CutPrefix(arg, "--"); ok && cmd.Flags().Lookup(flag) == nil {
					t.Errorf("%s: rampart %s has no flag --%s", name, cmd.Name(), flag)
				}
			}
		}
		for env := range s.Environment {
			if strings.HasPrefix(env, "RAMPART_") && !known(env) {
				t.Errorf("%s: rampart reads no variable %s", name, env)
			}
		}
		checkHealthcheck(t, root, name, s.Healthcheck.Test, s.Environment)
	}
	for _, name := range []string{"rampart-server", "rampart-worker"} {
		if len(c.Services[name].Healthcheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
	}

	// The Compose specification's own loader and schema, as `docker compose config`
	// uses them: interpolation, merge keys, inline configs, dependency conditions.
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"}, cli.WithWorkingDirectory("../.."), cli.WithName("rampart"))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose spec: %v", err)
	}
	if len(project.Services) != len(c.Services) {
		t.Fatalf("compose-go loaded %d services, the YAML has %d", len(project.Services), len(c.Services))
	}

	docker, err := exec.LookPath("docker")
	if err != nil || exec.Command(docker, "compose", "version").Run() != nil {
		t.Log("docker compose not installed: validated with compose-go only")
		return
	}
	out, err := exec.Command(docker, "compose", "-f", "../../docker-compose.yml", "config", "-q").CombinedOutput()
	if err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
}

// supportedEnv reports whether rampart reads a RAMPART_ variable: a name quoted in
// its flag definitions, the database password the compose file itself interpolates,
// or a webhook secret override.
func supportedEnv(t *testing.T) func(string) bool {
	t.Helper()
	var names []string
	re := regexp.MustCompile(`"(RAMPART_[A-Z_]+)"`)
	for _, f := range []string{"main.go", "cmd_dev.go", "cmd_server.go", "cmd_alert.go", "cmd_sim.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			names = append(names, m[1])
		}
	}
	return func(env string) bool {
		return slices.Contains(names, env) || strings.HasPrefix(env, ingest.SecretEnvPrefix) || strings.HasPrefix(env, app.APITokenEnvPrefix)
	}
}

func TestDockerfileMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	df, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if goVersion == nil || !strings.Contains(string(df), "golang:"+string(goVersion[1])) {
		t.Fatalf("Dockerfile does not build with go %s", goVersion[1])
	}
	for _, want := range []string{"CGO_ENABLED=0", "COPY examples", "./cmd/rampart"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
}

// checkHealthcheck checks a rampart service's healthcheck runs the image's own
// binary with a command and flags it has, against the port the service listens
// on (RAMPART_LISTEN or RAMPART_METRICS_LISTEN).
func checkHealthcheck(t *testing.T, root *cobra.Command, service string, test []string, env map[string]any) {
	t.Helper()
	if len(test) < 3 || test[0] != "CMD" || test[1] != "/app/bin/rampart" {
		if len(test) > 0 {
			t.Errorf("%s: healthcheck %q does not run /app/bin/rampart (the image has no shell)", service, test)
		}
		return
	}
	cmd, _, err := root.Find(test[2:])
	if err != nil || cmd.Name() != "healthcheck" {
		t.Errorf("%s: healthcheck %q is not rampart healthcheck", service, test)
		return
	}
	if err := cmd.ParseFlags(test[3:]); err != nil {
		t.Errorf("%s: healthcheck flags: %v", service, err)
		return
	}
	u, err := url.Parse(cmd.Flag("url").Value.String())
	if err != nil {
		t.Errorf("%s: healthcheck url: %v", service, err)
		return
	}
	for _, listen := range []string{"RAMPART_LISTEN", "RAMPART_METRICS_LISTEN"} {
		if v, ok := env[listen].(string); ok && strings.HasSuffix(v, ":"+u.Port()) {
			return
		}
	}
	t.Errorf("%s: healthcheck asks port %s, which the service does not listen on", service, u.Port())
}
