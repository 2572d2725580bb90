// Package codec encrypts Temporal payloads with AES-256-GCM, so the alerts,
// enrichment, decisions and playbook variables that workflows carry never sit in
// plain text in workflow history or in Temporal's database: an alert names users,
// hosts and addresses. Clients, workers and the webhook starter all convert
// payloads through DataConverter.
//
// A keyring holds one key that encrypts and any number of older keys that still
// decrypt, so a key can be rotated while runs recorded under the old one are still
// open. Each encrypted payload names its key by an id derived from the key. A
// payload without the encryption marker (history recorded before encryption was
// turned on) passes through unchanged.
//
// It may import only the standard library, protobuf and the Temporal SDK and API.
package codec

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Metadata of an encrypted payload.
const (
	MetadataEncoding  = "encoding"
	EncodingEncrypted = "binary/encrypted"
	MetadataKeyID     = "encryption-key-id"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// Keyring encrypts with its first key and decrypts with any of them. It
// implements converter.PayloadCodec.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring builds a keyring; keys[0] encrypts, the rest only decrypt.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("payload encryption: no key")
	}
	k := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("payload encryption: key %d is %d bytes, want %d (AES-256)", i+1, len(key), KeySize)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("payload encryption: %w", err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("payload encryption: %w", err)
		}
		id := KeyID(key)
		if i == 0 {
			k.current = id
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// KeyID names a key without revealing it: the first 8 bytes of its SHA-256, in hex.
func KeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// CurrentKeyID names the key that encrypts.
func (k *Keyring) CurrentKeyID() string { return k.current }

// Encode encrypts each payload whole (metadata and data), so the encoding of the
// value inside is hidden too.
func (k *Keyring) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := k.aeads[k.current]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return nil, fmt.Errorf("payload encryption: %w", err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("payload encryption: nonce: %w", err)
		}
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:    []byte(k.current),
			},
			Data: aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts the payloads this codec encrypted and passes others through.
// A payload encrypted under a key the keyring lacks, or altered since, is an
// error that names the key id: retrying cannot fix it.
func (k *Keyring) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		aead, ok := k.aeads[id]
		if id == "" {
			return nil, temporal.NewNonRetryableApplicationError("encrypted payload without a key id", "PayloadKeyMissing", nil)
		}
		if !ok {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("payload encrypted with key %s, which this process does not have", id), "PayloadKeyMissing", nil)
		}
		data := p.GetData()
		if len(data) < aead.NonceSize() {
			return nil, fmt.Errorf("payload encrypted with key %s is truncated", id)
		}
		plain, err := aead.Open(nil, data[:aead.NonceSize()], data[aead.NonceSize():], nil)
		if err != nil {
			return nil, fmt.Errorf("payload encrypted with key %s does not decrypt: %w", id, err)
		}
		var decoded commonpb.Payload
		if err := proto.Unmarshal(plain, &decoded); err != nil {
			return nil, fmt.Errorf("payload encrypted with key %s: %w", id, err)
		}
		out[i] = &decoded
	}
	return out, nil
}

// DataConverter is the SDK's default converter with payloads encrypted by k.
func (k *Keyring) DataConverter() converter.DataConverter {
	return converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), k)
}

// FailureConverter encodes failure messages and stack traces as payloads, so an
// error that quotes an alert's data is encrypted too.
func (k *Keyring) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          k.DataConverter(),
		EncodeCommonAttributes: true,
	})
}

// NewKey returns a fresh random key.
func NewKey() ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("payload key: %w", err)
	}
	return key, nil
}

// EncodeKey writes a key the way ParseKeys reads it.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// ParseKeys reads base64 keys separated by commas or new lines; lines starting
// with # are comments. The first key encrypts.
func ParseKeys(text string) ([][]byte, error) {
	var keys [][]byte
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		for _, field := range strings.Split(line, ",") {
			field = strings.TrimSpace(field)
			if field == "" {
				continue
			}
			key, err := base64.StdEncoding.DecodeString(field)
			if err != nil {
				return nil, fmt.Errorf("payload key %d is not base64: %w", len(keys)+1, err)
			}
			if len(key) != KeySize {
				return nil, fmt.Errorf("payload key %d is %d bytes, want %d (generate one with `rampart keygen`)", len(keys)+1, len(key), KeySize)
			}
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("no payload key given")
	}
	return keys, nil
}

// LoadKeyFile reads a keyring from path. With create, a missing file is created
// with a new key, readable by its owner only.
func LoadKeyFile(path string, create bool) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		key, kerr := NewKey()
		if kerr != nil {
			return nil, kerr
		}
		data = []byte("# Rampart payload key: the first key encrypts Temporal payloads, later ones only decrypt.\n" + EncodeKey(key) + "\n")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("payload key file: %w", err)
		}
		if err := createOnce(path, data); err != nil {
			return nil, fmt.Errorf("payload key file: %w", err)
		}
		// Another process may have created it first: use what is there.
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("payload key file: %w", err)
	}
	keys, err := ParseKeys(string(data))
	if err != nil {
		return nil, fmt.Errorf("payload key file %s: %w", path, err)
	}
	return NewKeyring(keys...)
}

// createOnce writes data to path unless path exists, never leaving a partial file
// there: the data goes to a temporary file that is then hard-linked into place.
func createOnce(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".payload-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}
