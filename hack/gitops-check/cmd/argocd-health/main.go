// Command argocd-health evaluates an Argo CD resource health Lua script the way Argo CD does
// (argo-cd util/lua/lua.go: VM.runLua + VM.ExecuteHealthLua, for a customization from argocd-cm,
// whose useOpenLibs defaults to false): a gopher-lua state without the standard libraries, then
// package, base, table and Argo CD's "safe" os library opened, os preloaded, a one-second
// context, the object decoded with Argo CD's decodeValue as the global `obj`, and the returned
// table converted through layeh.com/gopher-json into {status, message}; a status that is not an
// Argo CD health status becomes Unknown, as in Argo CD.
//
// Usage: argocd-health SCRIPT.lua < objects.json
// stdin holds one object or a JSON array of objects; stdout holds one {"status","message"} (or
// {"error"}) per object, as a JSON array when the input was an array.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	luajson "layeh.com/gopher-json"
)

type health struct {
	Status  string `json:"status,omitempty"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true,
	"Healthy": true, "Degraded": true, "Missing": true,
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: argocd-health SCRIPT.lua < objects.json")
		os.Exit(2)
	}
	script, err := os.ReadFile(os.Args[1])
	check(err)
	input, err := io.ReadAll(os.Stdin)
	check(err)
	trimmed := strings.TrimSpace(string(input))
	var raws []json.RawMessage
	if strings.HasPrefix(trimmed, "[") {
		check(json.Unmarshal(input, &raws))
	} else {
		raws = []json.RawMessage{json.RawMessage(input)}
	}
	results := make([]health, 0, len(raws))
	for _, raw := range raws {
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			results = append(results, health{Error: err.Error()})
			continue
		}
		results = append(results, executeHealthLua(obj, string(script)))
	}
	out := json.NewEncoder(os.Stdout)
	if strings.HasPrefix(trimmed, "[") {
		check(out.Encode(results))
	} else {
		check(out.Encode(results[0]))
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "argocd-health:", err)
		os.Exit(1)
	}
}

// executeHealthLua mirrors argo-cd VM.ExecuteHealthLua with UseOpenLibs=false.
func executeHealthLua(obj *unstructured.Unstructured, script string) health {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			panic(err)
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("actionParams", l.CreateTable(0, 0))
	l.SetGlobal("obj", decodeValue(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return health{Error: err.Error()}
	}
	returnValue := l.Get(-1)
	switch returnValue.Type() {
	case lua.LTTable:
		jsonBytes, err := luajson.Encode(returnValue)
		if err != nil {
			return health{Error: err.Error()}
		}
		var result health
		if err := json.Unmarshal(jsonBytes, &result); err != nil {
			var typeError *json.UnmarshalTypeError
			if ok := asTypeError(err, &typeError); ok && typeError.Value == "array" {
				return health{}
			}
			return health{Error: err.Error()}
		}
		if !validStatuses[result.Status] {
			return health{Status: "Unknown", Message: "Lua returned an invalid health status"}
		}
		return result
	case lua.LTNil:
		return health{}
	default:
		return health{Error: fmt.Sprintf("expect table output from Lua script, not %s", returnValue.Type())}
	}
}

func asTypeError(err error, target **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*target = t
	}
	return ok
}

// decodeValue is argo-cd util/lua/lua.go decodeValue.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []any:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}
	return lua.LNil
}

// openSafeOs and safeOsLoader are argo-cd util/lua/oslib_safe.go: os.time and os.date only
// (os.date here without Argo CD's strftime port: the operator's scripts use no os function).
// Like Argo CD's, openSafeOs registers them under the name of the table library, so a script
// sees no global `os` unless it calls require("os").
func openSafeOs(l *lua.LState) int {
	tabmod := l.RegisterModule(lua.TabLibName, osFuncs)
	l.Push(tabmod)
	return 1
}

func safeOsLoader(l *lua.LState) int {
	mod := l.SetFuncs(l.NewTable(), osFuncs)
	l.Push(mod)
	return 1
}

var osFuncs = map[string]lua.LGFunction{
	"time": func(l *lua.LState) int { l.Push(lua.LNumber(time.Now().Unix())); return 1 },
	"date": func(l *lua.LState) int { l.Push(lua.LString(time.Now().UTC().Format(time.RFC3339))); return 1 },
}
