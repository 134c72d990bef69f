package shred

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// KeySize is the size of a data key in bytes: AES-256.
const KeySize = 32

// ErrSealBroken is returned when a sealed field does not open with its key:
// the wrong key, an event it was not sealed for, or changed bytes.
var ErrSealBroken = errors.New("sealed personal text does not open")

// Key is one case's data key.
type Key struct {
	// ID is the key's id, a random UUID; events name it in key_id.
	ID uuid.UUID
	// Seq is the key message's sequence in the key stream, zero when not
	// known.
	Seq  uint64
	raw  [KeySize]byte
	aead cipher.AEAD
}

// NewKey makes a key from raw bytes.
func NewKey(id uuid.UUID, raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("key %s: %d bytes, want %d", id, len(raw), KeySize)
	}
	k := &Key{ID: id}
	copy(k.raw[:], raw)
	block, err := aes.NewCipher(k.raw[:])
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("key %s: %w", id, err)
	}
	return k, nil
}

// randomKey makes a new key from crypto/rand.
func randomKey() (*Key, error) {
	var raw [KeySize]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("new data key: %w", err)
	}
	return NewKey(uuid.New(), raw[:])
}

// personal holds the personal fields of one event: what is sealed.
type personal struct {
	Reason       string             `json:"reason,omitempty"`
	Text         string             `json:"text,omitempty"`
	EvidenceURLs []string           `json:"evidence_urls,omitempty"`
	UserRoles    []events.Snowflake `json:"user_roles,omitempty"`
	Metadata     json.RawMessage    `json:"metadata,omitempty"`
}

// emptyMetadata stands for the metadata of a metadata update whose key is
// gone.
var emptyMetadata = json.RawMessage("{}")

// take returns p without its personal fields, and those fields; ok is false
// when p carries no personal text.
func take(p events.Payload) (rest events.Payload, pers personal, ok bool) {
	switch p := p.(type) {
	case events.CaseOpened:
		pers = takeCaseFields(&p.CaseFields)
		rest = p
	case events.CaseImported:
		pers = takeCaseFields(&p.CaseFields)
		rest = p
	case events.CaseReasonAmended:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	case events.CaseNoteAdded:
		pers.Text, pers.EvidenceURLs = p.Text, p.EvidenceURLs
		p.Text, p.EvidenceURLs = "", nil
		rest = p
	case events.CaseMetadataUpdated:
		if len(p.Metadata) > 0 && string(p.Metadata) != "{}" {
			pers.Metadata = p.Metadata
		}
		p.Metadata = emptyMetadata
		rest = p
	case events.CaseClosed:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	case events.CaseReopened:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	case events.CaseDeleted:
		pers.Reason, p.Reason = p.Reason, ""
		rest = p
	default:
		return p, personal{}, false
	}
	empty := pers.Reason == "" && pers.Text == "" && len(pers.EvidenceURLs) == 0 && len(pers.UserRoles) == 0 && len(pers.Metadata) == 0
	return rest, pers, !empty
}

func takeCaseFields(f *events.CaseFields) personal {
	pers := personal{Reason: f.Reason, UserRoles: f.UserRoles, Metadata: f.Metadata}
	f.Reason, f.UserRoles, f.Metadata = "", nil, nil
	return pers
}

// put returns p with the personal fields pers.
func put(p events.Payload, pers personal) events.Payload {
	switch p := p.(type) {
	case events.CaseOpened:
		p.Reason, p.UserRoles, p.Metadata = pers.Reason, pers.UserRoles, pers.Metadata
		return p
	case events.CaseImported:
		p.Reason, p.UserRoles, p.Metadata = pers.Reason, pers.UserRoles, pers.Metadata
		return p
	case events.CaseReasonAmended:
		p.Reason = pers.Reason
		return p
	case events.CaseNoteAdded:
		p.Text, p.EvidenceURLs = pers.Text, pers.EvidenceURLs
		return p
	case events.CaseMetadataUpdated:
		if len(pers.Metadata) > 0 {
			p.Metadata = pers.Metadata
		}
		return p
	case events.CaseClosed:
		p.Reason = pers.Reason
		return p
	case events.CaseReopened:
		p.Reason = pers.Reason
		return p
	case events.CaseDeleted:
		p.Reason = pers.Reason
		return p
	}
	return p
}

// Personal reports whether p carries personal text that Seal would seal.
// It does not allocate: the command service asks it of every event.
func Personal(p events.Payload) bool {
	switch p := p.(type) {
	case events.CaseOpened:
		return p.Reason != "" || len(p.UserRoles) > 0 || len(p.Metadata) > 0
	case events.CaseImported:
		return p.Reason != "" || len(p.UserRoles) > 0 || len(p.Metadata) > 0
	case events.CaseReasonAmended:
		return p.Reason != ""
	case events.CaseNoteAdded:
		return p.Text != "" || len(p.EvidenceURLs) > 0
	case events.CaseMetadataUpdated:
		return len(p.Metadata) > 0 && string(p.Metadata) != "{}"
	case events.CaseClosed:
		return p.Reason != ""
	case events.CaseReopened:
		return p.Reason != ""
	case events.CaseDeleted:
		return p.Reason != ""
	}
	return false
}

// Strip blanks the personal fields of e, as an event whose key is gone
// opens: for a process that drops the text it holds in memory after a
// redaction.
func Strip(e *events.Event) {
	if e.Data == nil {
		return
	}
	e.Data, _, _ = take(e.Data)
	e.Sealed = nil
}

// nonceSize is the GCM nonce size; the nonce leads the ciphertext.
const nonceSize = 12

// aad is the additional data that binds a sealed field to its event.
func aad(e *events.Event, name events.Name) []byte {
	b := make([]byte, 0, 64)
	b = append(b, "modledger-seal-v1"...)
	b = binary.BigEndian.AppendUint64(b, uint64(e.GuildID))
	b = append(b, e.CaseID[:]...)
	b = append(b, e.EventID[:]...)
	return append(b, name...)
}

// Seal moves the personal fields of e into e.Sealed, encrypted with k, and
// sets e.KeyID. An event without personal text is left as it is. The
// envelope's guild, case id and event id must be final: they are bound to
// the ciphertext.
func Seal(e *events.Event, k *Key) error {
	if e.Data == nil {
		return fmt.Errorf("seal event %s: no payload", e.EventID)
	}
	rest, pers, ok := take(e.Data)
	if !ok {
		return nil
	}
	plain, err := json.Marshal(pers)
	if err != nil {
		return fmt.Errorf("seal %s event %s: %w", e.Data.EventName(), e.EventID, err)
	}
	out := make([]byte, nonceSize, nonceSize+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(out); err != nil {
		return fmt.Errorf("seal %s event %s: nonce: %w", e.Data.EventName(), e.EventID, err)
	}
	out = k.aead.Seal(out, out[:nonceSize], plain, aad(e, e.Data.EventName()))
	e.Data, e.KeyID, e.Sealed = rest, k.ID, out
	return nil
}

// Open puts the sealed personal fields of e back into its payload with k,
// the key e.KeyID names, and clears e.Sealed. With k nil (the key is gone)
// the personal fields stay empty. An event that is not sealed is left as it
// is. A ciphertext that does not open is ErrSealBroken.
func Open(e *events.Event, k *Key) error {
	if len(e.Sealed) == 0 || e.Data == nil {
		return nil
	}
	if k == nil {
		e.Sealed = nil
		return nil
	}
	if k.ID != e.KeyID {
		return fmt.Errorf("open %s event %s: %w: key %s given for key %s", e.Event, e.EventID, ErrSealBroken, k.ID, e.KeyID)
	}
	if len(e.Sealed) < nonceSize+k.aead.Overhead() {
		return fmt.Errorf("open %s event %s: %w: %d bytes", e.Event, e.EventID, ErrSealBroken, len(e.Sealed))
	}
	plain, err := k.aead.Open(nil, e.Sealed[:nonceSize], e.Sealed[nonceSize:], aad(e, e.Data.EventName()))
	if err != nil {
		return fmt.Errorf("open %s event %s: %w: %v", e.Event, e.EventID, ErrSealBroken, err)
	}
	var pers personal
	if err := json.Unmarshal(plain, &pers); err != nil {
		return fmt.Errorf("open %s event %s: %w: %v", e.Event, e.EventID, ErrSealBroken, err)
	}
	e.Data = put(e.Data, pers)
	e.Sealed = nil
	return nil
}
