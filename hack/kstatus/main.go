// Command kstatus reads one Kubernetes object as JSON on stdin and prints how
// kstatus (the library Flux uses for health) judges it:
// {"status": "...", "message": "..."}.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sjson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	// k8s.io json decodes whole numbers as int64, as the unstructured accessors expect.
	var obj map[string]interface{}
	if err := k8sjson.Unmarshal(data, &obj); err != nil {
		fail(err)
	}
	res, err := status.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		fail(err)
	}
	out, err := json.Marshal(map[string]string{
		"status":  res.Status.String(),
		"message": res.Message,
	})
	if err != nil {
		fail(err)
	}
	fmt.Println(string(out))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
