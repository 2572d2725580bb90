package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// MinAPITokenLength is the shortest API token accepted: 128 bits as hex.
const MinAPITokenLength = 32

// APITokens authenticates API callers by bearer token. Each token has a name,
// which is who the caller is: it is recorded as the decider of an approval and
// logged with every request. Tokens are kept only as SHA-256 digests.
type APITokens struct {
	tokens []apiToken
}

type apiToken struct {
	name   string
	digest [sha256.Size]byte
}

// NewAPITokens takes tokens by the name of who holds each.
func NewAPITokens(byName map[string]string) (*APITokens, error) {
	t := &APITokens{}
	seen := map[[sha256.Size]byte]string{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		token := byName[name]
		digest := sha256.Sum256([]byte(token))
		switch {
		case !validTokenName(name):
			errs = append(errs, fmt.Errorf("API token name %q: use letters, digits, '.', '_' or '-' (at most 64)", name))
		case len(token) < MinAPITokenLength:
			errs = append(errs, fmt.Errorf("API token of %s is shorter than %d characters (make one with `rampart keygen`)", name, MinAPITokenLength))
		case seen[digest] != "":
			errs = append(errs, fmt.Errorf("API tokens of %s and %s are the same", seen[digest], name))
		default:
			seen[digest] = name
			t.tokens = append(t.tokens, apiToken{name: name, digest: digest})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return t, nil
}

func validTokenName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, r := range name {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
		default:
			return false
		}
	}
	return true
}

// Len is how many tokens there are.
func (t *APITokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.tokens)
}

// Identify names the holder of token. Every token is compared, in constant time,
// so the answer's timing says nothing about which one came close.
func (t *APITokens) Identify(token string) (string, bool) {
	digest := sha256.Sum256([]byte(token))
	name := ""
	for _, k := range t.tokens {
		if subtle.ConstantTimeCompare(digest[:], k.digest[:]) == 1 {
			name = k.name
		}
	}
	return name, name != ""
}

// TokenChanges says what replacing the API tokens changed, by holder.
type TokenChanges struct {
	Added, Removed []string
	// Rekeyed holders have a new token: their old one is refused from now on.
	Rekeyed []string
}

// ReplaceTokens puts next in force from the next request on. It refuses to take
// every token away: a reload (of an emptied or half-written token file, say) never
// opens a guarded API; only a restart without tokens does.
func (s *Server) ReplaceTokens(next *APITokens) (TokenChanges, error) {
	s.tokensMu.Lock()
	defer s.tokensMu.Unlock()
	prev := s.tokens.Load()
	if prev.Len() > 0 && next.Len() == 0 {
		return TokenChanges{}, errors.New("no API token would be left: the API stays guarded by the tokens it has (restart without tokens to open it)")
	}
	was, is := prev.byName(), next.byName()
	var changes TokenChanges
	for _, name := range slices.Sorted(maps.Keys(is)) {
		if old, ok := was[name]; !ok {
			changes.Added = append(changes.Added, name)
		} else if old != is[name] {
			changes.Rekeyed = append(changes.Rekeyed, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(was)) {
		if _, ok := is[name]; !ok {
			changes.Removed = append(changes.Removed, name)
		}
	}
	s.tokens.Store(next)
	return changes, nil
}

func (t *APITokens) byName() map[string][sha256.Size]byte {
	out := map[string][sha256.Size]byte{}
	if t == nil {
		return out
	}
	for _, k := range t.tokens {
		out[k.name] = k.digest
	}
	return out
}

// identityKey is where authenticate leaves the caller's name in the echo context.
const identityKey = "rampart.identity"

// webhookRoute authenticates by its source's secret instead of an API token.
const webhookRoute = "/api/v1/webhooks/:source"

// authenticate admits a request under /api/ with a known bearer token, when
// tokens are configured. It runs after routing, so it knows the webhook route by
// its pattern; a path no route matches needs a token too, and so learns nothing
// of which routes exist.
//
// Without tokens the API is open, which the process allows only on a loopback
// address; a web page the analyst visits could still reach it through their
// browser. So the open API answers only requests addressed to this machine by
// name (a DNS-rebound name is refused), and refuses a change that a page of
// another origin asks for (a form posted across sites carries its Origin). A
// token, which a browser never attaches by itself, makes both moot.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !guarded(c) {
			return next(c)
		}
		tokens := s.tokens.Load()
		if tokens.Len() == 0 {
			if err := localAndSameOrigin(c.Request()); err != nil {
				return err
			}
			return next(c)
		}
		scheme, token, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		name, ok := "", false
		if strings.EqualFold(scheme, "Bearer") {
			name, ok = tokens.Identify(strings.TrimSpace(token))
		}
		if !ok {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="rampart"`)
			return apiError(http.StatusUnauthorized, "unauthorized",
				"the API needs Authorization: Bearer <token> with a token the server knows (RAMPART_API_TOKEN for the CLI)")
		}
		c.Set(identityKey, name)
		return next(c)
	}
}

// guarded reports whether a request is for the API that tokens guard: under
// /api/, but not a webhook delivery.
func guarded(c echo.Context) bool {
	return c.Path() != webhookRoute && strings.HasPrefix(c.Request().URL.Path, "/api/")
}

// localAndSameOrigin refuses what a browser may send the open API on behalf of
// another site: a request under another host name, or a change from another
// origin. The CLI and curl send no Origin.
func localAndSameOrigin(r *http.Request) error {
	if !IsLoopback(r.Host) {
		return apiError(http.StatusForbidden, "forbidden_host",
			"the open API answers requests addressed to 127.0.0.1 or localhost only; configure API tokens to serve other names")
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		if u, err := url.Parse(origin); err != nil || u.Host != r.Host {
			return apiError(http.StatusForbidden, "cross_origin", "a change asked by a page of another origin is refused")
		}
	}
	return nil
}

// IsLoopback reports whether a host, or host:port, names this machine only:
// localhost or a loopback address.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// identity is the authenticated caller's name; false when the API is open.
func identity(c echo.Context) (string, bool) {
	name, ok := c.Get(identityKey).(string)
	return name, ok && name != ""
}
