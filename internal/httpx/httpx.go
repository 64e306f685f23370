// Package httpx holds the JSON conventions of Meridian's HTTP API: every
// error is {"error": {"code": "...", "message": "..."}} with a 4xx/5xx status.
package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// ErrorBody is the error object of every API error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. Code is stable and machine-readable
// (bad_request, unauthorized, forbidden, not_found, method_not_allowed,
// conflict, too_large, unavailable, internal).
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// Error writes an error object.
func Error(w http.ResponseWriter, status int, code, format string, args ...any) {
	JSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: fmt.Sprintf(format, args...)}})
}

// BadRequest writes a 400 bad_request error.
func BadRequest(w http.ResponseWriter, format string, args ...any) {
	Error(w, http.StatusBadRequest, "bad_request", format, args...)
}

// NotFound writes a 404 not_found error.
func NotFound(w http.ResponseWriter, format string, args ...any) {
	Error(w, http.StatusNotFound, "not_found", format, args...)
}

// Internal writes a 500 without details (log them; they may hold secrets).
func Internal(w http.ResponseWriter) {
	Error(w, http.StatusInternalServerError, "internal", "internal error; see the server log")
}

// DecodeJSON reads a JSON body of at most limit bytes into v, rejecting
// unknown fields. It writes the error response itself and returns false on
// failure.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) bool {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			Error(w, http.StatusRequestEntityTooLarge, "too_large", "body larger than %d bytes", limit)
			return false
		}
		BadRequest(w, "invalid JSON body: %v", err)
		return false
	}
	if _, err := dec.Token(); err != io.EOF {
		BadRequest(w, "invalid JSON body: trailing data")
		return false
	}
	return true
}
