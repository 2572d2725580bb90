package workflows

import "strings"

// SecretPlaceholder stands for secrets.<name> in rendered inputs. The action
// activity swaps the value in; workflow code and history only ever hold this.
func SecretPlaceholder(name string) string { return secretOpen + name + "\x00" }

const secretOpen = "\x00rampart-secret:"

// ReplaceSecrets returns v with every secret placeholder in its strings replaced
// by with(name), copying maps and lists; v itself is not changed.
func ReplaceSecrets(v any, with func(name string) string) any {
	switch v := v.(type) {
	case string:
		return replaceInString(v, with)
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = ReplaceSecrets(e, with)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = ReplaceSecrets(e, with)
		}
		return out
	}
	return v
}

// RedactSecrets shows secret placeholders as [secret name]: how the store, the
// API and test output show a secret.
func RedactSecrets(v any) any {
	if v == nil {
		return nil
	}
	return ReplaceSecrets(v, func(name string) string { return "[secret " + name + "]" })
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
