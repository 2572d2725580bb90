package playbook

import (
	"fmt"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
)

// Function is one function of the expression library, documented for `rampart
// playbook functions` and the README.
type Function struct {
	Name      string
	Signature string
	Doc       string
}

// Library lists Rampart's functions. expr's own builtins (lower, upper, trim,
// split, len, duration, any, all, filter, map, …) are available too, except now,
// which Rampart replaces with the workflow's clock.
var Library = []Function{
	{"cidr_contains", "cidr_contains(cidr string, ip string) bool", "ip lies inside the network cidr (10.0.0.0/8)"},
	{"is_private_ip", "is_private_ip(ip string) bool", "ip is private (RFC 1918, RFC 4193), loopback or link-local"},
	{"in_list", "in_list(value any, list any) bool", "value equals an element of list"},
	{"regex_match", "regex_match(pattern string, s string) bool", "s matches the regular expression pattern (RE2)"},
	{"now", "now() time", "the run's current time: the workflow clock, deterministic on replay"},
	{"parse_duration", "parse_duration(text string) duration", "a duration as playbooks write them: 90s, 15m, 24h, 7d, 1h30m"},
	{"extract_ips", "extract_ips(text string) []string", "IPv4 and IPv6 addresses in text, in order, without repeats"},
	{"extract_domains", "extract_domains(text string) []string", "domain names in text (also those inside URLs and e-mail addresses)"},
	{"extract_urls", "extract_urls(text string) []string", "http(s) URLs in text"},
	{"extract_hashes", "extract_hashes(text string) []string", "MD5, SHA-1 and SHA-256 hex digests in text, lower-cased"},
	{"extract_emails", "extract_emails(text string) []string", "e-mail addresses in text, lower-cased"},
}

var (
	stringType = reflect.TypeOf("")
	timeType   = reflect.TypeOf(time.Time{})
)

// functionOptions are the library as expr options. now reads the clock the
// evaluation gives it: the workflow's, so a replay computes the same values.
func functionOptions(clock func() time.Time) []expr.Option {
	str := func(params []any, i int) (string, error) {
		s, ok := params[i].(string)
		if !ok {
			return "", fmt.Errorf("argument %d must be a string, not %T", i+1, params[i])
		}
		return s, nil
	}
	strings1 := func(fn func(string) []string) func(params ...any) (any, error) {
		return func(params ...any) (any, error) {
			s, err := str(params, 0)
			if err != nil {
				return nil, err
			}
			return fn(s), nil
		}
	}
	return []expr.Option{
		expr.DisableBuiltin("now"),
		expr.Function("now", func(...any) (any, error) { return clock(), nil }, new(func() time.Time)),
		expr.Function("cidr_contains", func(params ...any) (any, error) {
			cidr, err := str(params, 0)
			if err != nil {
				return nil, err
			}
			ip, err := str(params, 1)
			if err != nil {
				return nil, err
			}
			return CIDRContains(cidr, ip)
		}, new(func(string, string) bool)),
		expr.Function("is_private_ip", func(params ...any) (any, error) {
			ip, err := str(params, 0)
			if err != nil {
				return nil, err
			}
			return IsPrivateIP(ip), nil
		}, new(func(string) bool)),
		expr.Function("in_list", func(params ...any) (any, error) {
			return InList(params[0], params[1]), nil
		}, new(func(any, any) bool)),
		expr.Function("regex_match", func(params ...any) (any, error) {
			pattern, err := str(params, 0)
			if err != nil {
				return nil, err
			}
			s, err := str(params, 1)
			if err != nil {
				return nil, err
			}
			re, err := regexp.Compile(pattern)
			if err != nil {
				return nil, fmt.Errorf("regex_match: %w", err)
			}
			return re.MatchString(s), nil
		}, new(func(string, string) bool)),
		expr.Function("parse_duration", func(params ...any) (any, error) {
			text, err := str(params, 0)
			if err != nil {
				return nil, err
			}
			return ParseDuration(text)
		}, new(func(string) time.Duration)),
		expr.Function("extract_ips", strings1(ExtractIPs), new(func(string) []string)),
		expr.Function("extract_domains", strings1(ExtractDomains), new(func(string) []string)),
		expr.Function("extract_urls", strings1(ExtractURLs), new(func(string) []string)),
		expr.Function("extract_hashes", strings1(ExtractHashes), new(func(string) []string)),
		expr.Function("extract_emails", strings1(ExtractEmails), new(func(string) []string)),
	}
}

// CIDRContains reports whether ip lies in the network cidr.
func CIDRContains(cidr, ip string) (bool, error) {
	prefix, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		return false, fmt.Errorf("cidr_contains: %q is not a CIDR network", cidr)
	}
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return false, nil // not an address: not inside
	}
	return prefix.Contains(addr.Unmap()), nil
}

// IsPrivateIP reports private, loopback and link-local addresses.
func IsPrivateIP(ip string) bool {
	addr, err := netip.ParseAddr(strings.TrimSpace(ip))
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	return addr.IsPrivate() || addr.IsLoopback() || addr.IsLinkLocalUnicast()
}

// InList reports whether value equals an element of list (any slice or array).
func InList(value, list any) bool {
	v := reflect.ValueOf(list)
	if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
		return false
	}
	for i := range v.Len() {
		if reflect.DeepEqual(v.Index(i).Interface(), value) {
			return true
		}
	}
	return false
}

var (
	ipToken       = regexp.MustCompile(`[0-9A-Fa-f:.]{2,}`)
	urlPattern    = regexp.MustCompile(`(?i)\bhttps?://[^\s<>"'\x60]+`)
	emailPattern  = regexp.MustCompile(`(?i)\b[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}\b`)
	domainPattern = regexp.MustCompile(`(?i)\b(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b`)
	hashPattern   = regexp.MustCompile(`(?i)\b(?:[0-9a-f]{64}|[0-9a-f]{40}|[0-9a-f]{32})\b`)
)

// ExtractIPs finds IPv4 and IPv6 addresses (an address:port counts as its address).
// Each candidate is a whole run of hex digits, dots and colons that parses as an
// address, so a version string such as 1.2.3.4.5 is not one.
func ExtractIPs(text string) []string {
	var out []string
	for _, m := range ipToken.FindAllString(text, -1) {
		m = strings.TrimRight(m, ".:")
		if !strings.ContainsAny(m, ".:") {
			continue
		}
		addr, err := netip.ParseAddr(m)
		if err != nil {
			ap, perr := netip.ParseAddrPort(m)
			if perr != nil {
				continue
			}
			addr = ap.Addr()
		}
		out = appendNew(out, addr.Unmap().String())
	}
	return nonNil(out)
}

// ExtractURLs finds http and https URLs, trailing punctuation removed.
func ExtractURLs(text string) []string {
	var out []string
	for _, m := range urlPattern.FindAllString(text, -1) {
		out = appendNew(out, strings.TrimRight(m, ".,;:!?)]}"))
	}
	return nonNil(out)
}

// ExtractEmails finds e-mail addresses, lower-cased.
func ExtractEmails(text string) []string {
	var out []string
	for _, m := range emailPattern.FindAllString(text, -1) {
		out = appendNew(out, strings.ToLower(m))
	}
	return nonNil(out)
}

// ExtractDomains finds domain names, lower-cased, skipping what only looks like one
// (IP addresses, file names with a common extension).
func ExtractDomains(text string) []string {
	var out []string
	for _, m := range domainPattern.FindAllString(text, -1) {
		m = strings.ToLower(m)
		if _, err := netip.ParseAddr(m); err == nil {
			continue
		}
		if ext := m[strings.LastIndexByte(m, '.')+1:]; slices.Contains(fileExtensions, ext) {
			continue
		}
		out = appendNew(out, m)
	}
	return nonNil(out)
}

// fileExtensions end names that look like domains but are files (invoice.pdf).
var fileExtensions = []string{"exe", "dll", "pdf", "doc", "docx", "xls", "xlsx", "zip", "txt", "js", "ps1", "bat", "png", "jpg", "html", "htm", "log", "tmp", "json", "yaml", "yml", "lnk", "iso", "msi"}

// ExtractHashes finds MD5, SHA-1 and SHA-256 digests, lower-cased.
func ExtractHashes(text string) []string {
	var out []string
	for _, m := range hashPattern.FindAllString(text, -1) {
		out = appendNew(out, strings.ToLower(m))
	}
	return nonNil(out)
}

func appendNew(list []string, v string) []string {
	if slices.Contains(list, v) {
		return list
	}
	return append(list, v)
}

// nonNil keeps an empty result a list, so `len(…)` and `in` work on it.
func nonNil(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}
