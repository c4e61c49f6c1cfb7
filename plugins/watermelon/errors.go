package watermelon

import (
	"errors"

	"github.com/ferrysync/ferry/framework"
)

// asError reports whether err carries a protocol error (one the client
// may see), as opposed to an internal failure.
func asError(err error, target **framework.Error) bool {
	if !errors.As(err, target) {
		var ve *framework.ValidationError
		return errors.As(err, &ve)
	}
	return (*target).Code != framework.CodeInternal
}
