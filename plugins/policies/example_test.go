package policies_test

import (
	"fmt"

	"github.com/ferrysync/ferry/framework"
	"github.com/ferrysync/ferry/plugins/policies"
)

// Receipts never change once stored, and a single-writer settings record
// follows arrival order; everything else keeps last-writer-wins.
func Example() {
	receipts := framework.ModelOptions{Schema: "data/receipt.json", Policy: policies.FirstWriterWins{}}
	settings := framework.ModelOptions{Schema: "data/setting.json", Policy: policies.ClientWins{}}
	fmt.Printf("%T %T\n", receipts.Policy, settings.Policy)
	// Output: policies.FirstWriterWins policies.ClientWins
}
