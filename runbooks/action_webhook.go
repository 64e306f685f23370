package runbooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// webhookEndpoint sends Standard Webhooks: the headers webhook-id,
// webhook-timestamp and webhook-signature ("v1,<base64 HMAC-SHA256 of
// id.timestamp.body>" keyed by the base64-decoded part of "whsec_…").
type webhookEndpoint struct {
	name     string
	url      string
	key      []byte // never logged
	timeout  time.Duration
	attempts int
	backoff  time.Duration
	allow    func(string) error
	client   *http.Client
	now      func() time.Time
}

func newWebhookEndpoint(name string, e WebhookEndpoint, wc WebhookConfig) (*webhookEndpoint, error) {
	sec, err := e.Secret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("webhook endpoint %s: secret: %w", name, err)
	}
	key, err := webhookKey(sec)
	if err != nil {
		return nil, fmt.Errorf("webhook endpoint %s: secret: %w", name, err)
	}
	w := &webhookEndpoint{name: name, url: e.URL, key: key, timeout: e.Timeout, attempts: e.Attempts,
		backoff: e.Backoff, allow: wc.allowed, now: time.Now}
	if w.timeout == 0 {
		w.timeout = 5 * time.Second
	}
	if w.attempts == 0 {
		w.attempts = 4
	}
	if w.backoff == 0 {
		w.backoff = 250 * time.Millisecond
	}
	w.client = &http.Client{
		// Never follow a redirect: it could leave the allowlist.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Sign returns the webhook-signature header value for id, ts and body.
func Sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// errPermanent marks a response that retrying cannot fix (4xx but 408/429).
var errPermanent = errors.New("permanent failure")

// send posts body with the same id on every attempt (receivers deduplicate
// on it), retrying network errors, 408, 429 and 5xx with exponential backoff.
func (w *webhookEndpoint) send(ctx context.Context, id string, body []byte) (string, error) {
	if err := w.allow(w.url); err != nil {
		return "", fmt.Errorf("webhook %s: %w", w.name, err)
	}
	var last error
	delay := w.backoff
	for attempt := 1; attempt <= w.attempts; attempt++ {
		status, err := w.once(ctx, id, body)
		if err == nil {
			return fmt.Sprintf("POST %s: HTTP %d after %d attempt(s)", w.name, status, attempt), nil
		}
		last = err
		if errors.Is(err, errPermanent) || attempt == w.attempts {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("webhook %s: %w (last error: %v)", w.name, ctx.Err(), last)
		case <-time.After(delay):
		}
		delay *= 2
	}
	return "", fmt.Errorf("webhook %s: %w", w.name, last)
}

func (w *webhookEndpoint) once(ctx context.Context, id string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errPermanent, err)
	}
	ts := w.now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "meridian-runbooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(w.key, id, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST: %w", scrubURLError(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return resp.StatusCode, nil
	case resp.StatusCode == 408 || resp.StatusCode == 429 || resp.StatusCode >= 500:
		return resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
	default:
		return resp.StatusCode, fmt.Errorf("%w: HTTP %d", errPermanent, resp.StatusCode)
	}
}

// scrubURLError drops the URL from net/http's errors (its query string
// could carry a token).
func scrubURLError(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// WebhookEvent is the JSON body of a runbook webhook.
type WebhookEvent struct {
	Type      string            `json:"type"`
	Phase     string            `json:"phase"` // apply or undo
	Runbook   string            `json:"runbook"`
	RunID     string            `json:"run_id"`
	Step      string            `json:"step"`
	Group     string            `json:"group"`
	Params    map[string]string `json:"params"`
	Data      map[string]string `json:"data,omitempty"`
	Timestamp time.Time         `json:"timestamp"`
}

// webhookAction is a planned webhook step.
type webhookAction struct {
	ep    *webhookEndpoint
	event WebhookEvent
	sent  bool
}

func (a *webhookAction) Kind() string { return "webhook" }

func (a *webhookAction) Describe() string {
	return fmt.Sprintf("webhook %s: POST a signed %s event (data %v)", a.ep.name, a.event.Type, a.event.Data)
}

func (a *webhookAction) post(ctx context.Context, phase string) (string, error) {
	ev := a.event
	ev.Phase = phase
	ev.Timestamp = time.Now().UTC()
	body, err := json.Marshal(ev)
	if err != nil {
		return "", err
	}
	id := "msg_" + ev.RunID + "_" + ev.Step + "_" + phase
	return a.ep.send(ctx, id, body)
}

func (a *webhookAction) Apply(ctx context.Context) (string, error) {
	d, err := a.post(ctx, "apply")
	if err == nil {
		a.sent = true
	}
	return d, err
}

func (a *webhookAction) Undo(ctx context.Context) (string, error) {
	if !a.sent {
		return "nothing to undo", nil
	}
	return a.post(ctx, "undo")
}
