// Package schemas is Rampart's room for data contracts: the JSON Schemas every payload
// is checked against (embedded with go:embed) and the Go types they describe, starting
// with the normalized Alert.
//
// It is pure: it may import only the standard library. Compiling the schemas into
// validators happens where they are used (server/ingest), so workflow code that needs
// the Alert type does not link a validator.
package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

//go:embed alert.schema.json sources/*.schema.json integrations/*.json playbook.schema.json
var files embed.FS

// AlertSchema returns alert.schema.json.
func AlertSchema() []byte {
	b, err := files.ReadFile("alert.schema.json")
	if err != nil {
		panic(fmt.Sprintf("schemas: embedded alert schema missing: %v", err)) // a build defect, not input
	}
	return b
}

// SourceSchema returns the payload schema of a webhook source.
func SourceSchema(source string) ([]byte, error) {
	b, err := files.ReadFile(path.Join("sources", source+".schema.json"))
	if err != nil {
		return nil, fmt.Errorf("schemas: no payload schema for source %q: %w", source, err)
	}
	return b, nil
}

// PlaybookSchema returns playbook.schema.json.
func PlaybookSchema() []byte {
	b, err := files.ReadFile("playbook.schema.json")
	if err != nil {
		panic(fmt.Sprintf("schemas: embedded playbook schema missing: %v", err)) // a build defect, not input
	}
	return b
}

// IntegrationOperations returns every integration operation's declaration
// (integrations/<integration>.<operation>.json), by operation name.
func IntegrationOperations() map[string][]byte {
	entries, _ := fs.ReadDir(files, "integrations")
	out := make(map[string][]byte, len(entries))
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		b, err := files.ReadFile(path.Join("integrations", e.Name()))
		if err != nil {
			panic(fmt.Sprintf("schemas: embedded %s unreadable: %v", e.Name(), err))
		}
		out[name] = b
	}
	return out
}

// Sources lists the sources that have a payload schema.
func Sources() []string {
	entries, _ := fs.ReadDir(files, "sources")
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".schema.json"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Side-effect classes of integration operations, as schemas/integrations/*.json
// declare them: dry runs skip notify and contain, and an alert counts as contained
// when a contain operation ran.
const (
	SideEffectRead    = "read"
	SideEffectNotify  = "notify"
	SideEffectContain = "contain"
)
