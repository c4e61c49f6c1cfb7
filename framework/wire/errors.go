package wire

import (
	"net/http"
	"strconv"
)

// Error codes of the protocol, in error bodies and in the code of a
// rejected [Result].
const (
	CodeInvalid          = "invalid"
	CodeUnknownModel     = "unknown_model"
	CodeInvalidCursor    = "invalid_cursor"
	CodeUnauthenticated  = "unauthenticated"
	CodeForbidden        = "forbidden"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeResetRequired    = "reset_required"
	CodeTooLarge         = "too_large"
	CodeQuotaExceeded    = "quota_exceeded"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeRateLimited      = "rate_limited"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
)

var codeStatus = map[string]int{
	CodeInvalid:          http.StatusBadRequest,
	CodeUnknownModel:     http.StatusBadRequest,
	CodeInvalidCursor:    http.StatusBadRequest,
	CodeUnauthenticated:  http.StatusUnauthorized,
	CodeForbidden:        http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodeResetRequired:    http.StatusGone,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeQuotaExceeded:    http.StatusRequestEntityTooLarge,
	CodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

// HTTPStatus is the HTTP status an error answer with code has; 500 for a
// code the protocol does not know.
func HTTPStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// CodeForStatus is the code to take for an error answer with the HTTP
// status that lacks the error body (a proxy's error page): the protocol's
// usual code for that status (too_large for 413, rate_limited for 429,
// unavailable for 503, …), internal for other 5xx statuses, and "http_"
// followed by the number for the rest.
func CodeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return CodeInvalid
	case http.StatusUnauthorized:
		return CodeUnauthenticated
	case http.StatusForbidden:
		return CodeForbidden
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusMethodNotAllowed:
		return CodeMethodNotAllowed
	case http.StatusConflict:
		return CodeConflict
	case http.StatusGone:
		return CodeResetRequired
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusUnsupportedMediaType:
		return CodeUnsupportedMedia
	case http.StatusTooManyRequests:
		return CodeRateLimited
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	}
	if status >= 500 {
		return CodeInternal
	}
	return "http_" + strconv.Itoa(status)
}

// ErrorBody is the body of every non-2xx answer:
// {"error": {"code", "message", "details"?}}.
type ErrorBody struct {
	Error ErrorObject `json:"error"`
}

// ErrorObject is the error of an [ErrorBody]: a code, a message safe to
// show, and for invalid requests the places at fault.
type ErrorObject struct {
	Code    string       `json:"code"`
	Message string       `json:"message"`
	Details []FieldError `json:"details,omitempty"`
}
