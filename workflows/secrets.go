package workflows

import "strings"

// SecretPlaceholder stands for secrets.<name> in rendered inputs. The action
// activity swaps the value in; workflow code and history only ever hold this.
func SecretPlaceholder(name string) string { return secretOpen + name + "\x00" }

const secretOpen = "\x00rampart-secret:"

// ReplaceSecrets returns v with every secret placeholder in its strings replaced
// by with(name), copying maps and lists; v itself is not changed.
func ReplaceSecrets(v any, with func(name string) string) any {
	return MapStrings(v, func(s string) string { return replaceInString(s, with) })
}

// RedactSecrets shows secret placeholders as SecretShown does: how the store, the
// API and test output show a secret.
func RedactSecrets(v any) any {
	if v == nil {
		return nil
	}
	return ReplaceSecrets(v, SecretShown)
}

// SecretShown is how secrets.<name> shows wherever its value may not: [secret name].
func SecretShown(name string) string { return "[secret " + name + "]" }

// MapStrings returns v, a decoded JSON value, with f applied to each of its
// strings, map keys included, copying maps and lists; v itself is not changed.
func MapStrings(v any, f func(string) string) any {
	switch v := v.(type) {
	case string:
		return f(v)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[f(k)] = MapStrings(e, f)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = MapStrings(e, f)
		}
		return out
	}
	return v
}

func replaceInString(s string, with func(string) string) string {
	if !strings.Contains(s, secretOpen) {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, secretOpen)
		if i < 0 {
			break
		}
		j := strings.Index(s[i+len(secretOpen):], "\x00")
		if j < 0 {
			break
		}
		name := s[i+len(secretOpen) : i+len(secretOpen)+j]
		b.WriteString(s[:i])
		b.WriteString(with(name))
		s = s[i+len(secretOpen)+j+1:]
	}
	b.WriteString(s)
	return b.String()
}
