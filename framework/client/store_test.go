package client_test

import (
	"testing"

	"github.com/ferrysync/ferry/framework/client"
	"github.com/ferrysync/ferry/framework/client/clienttest"
)

func TestMemoryStore(t *testing.T) {
	clienttest.TestStore(t, func(*testing.T) client.Store { return client.NewMemoryStore() })
}
