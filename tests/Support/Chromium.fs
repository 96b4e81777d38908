/// A small Chrome DevTools Protocol client for tests that need a real browser: it launches headless
/// Chromium, talks to it over the DevTools WebSocket (flattened sessions, one per page), and always
/// kills it. Every call and wait has a bounded timeout. Chromium is found on PATH (Debian's `chromium`,
/// which .ci/run installs) or at LENS_CHROMIUM; without it, a browser test is skipped loudly (failed under CI).
module Lens.Tests.Chromium

open System
open System.Collections.Generic
open System.Diagnostics
open System.IO
open System.Net.WebSockets
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open System.Text.RegularExpressions
open System.Threading
open System.Threading.Tasks

let callTimeout = TimeSpan.FromSeconds 30.0
let launchTimeout = TimeSpan.FromSeconds 30.0

/// Parameters for a DevTools call from an (anonymous) record.
let json (value: 'T) : JsonObject = JsonSerializer.SerializeToNode(value).AsObject()

/// Waits for a task, failing with `what` on timeout and unwrapping the task's own exception.
let private await (what: string) (timeout: TimeSpan) (t: Task) =
    let finished =
        try t.Wait timeout
        with :? AggregateException as e ->
            raise (Exception(sprintf "%s failed: %s" what e.InnerException.Message, e.InnerException))
    if not finished then failwithf "%s timed out after %.0f s" what timeout.TotalSeconds

/// A DevTools event: its method, the session it came from ("" for the browser) and its parameters.
type CdpEvent = { Method: string; SessionId: string; Params: JsonNode }

/// One WebSocket to the browser: calls are matched to replies by id; events are kept in order.
type Connection(ws: ClientWebSocket) =
    let gate = obj ()
    let pending = Dictionary<int, TaskCompletionSource<JsonNode>>()
    let events = ResizeArray<CdpEvent>()
    let stop = new CancellationTokenSource()
    let sendLock = new SemaphoreSlim(1, 1)
    let mutable nextId = 0
    let mutable closed: exn option = None

    let dispatch (msg: JsonNode) =
        match msg["id"] with
        | null ->
            let session = match msg["sessionId"] with null -> "" | s -> s.GetValue<string>()
            let ev = { Method = msg["method"].GetValue<string>(); SessionId = session; Params = msg["params"] }
            lock gate (fun () -> events.Add ev; Monitor.PulseAll gate)
        | id ->
            let id = id.GetValue<int>()
            let waiting =
                lock gate (fun () ->
                    match pending.TryGetValue id with
                    | true, t -> pending.Remove id |> ignore; Some t
                    | _ -> None)
            waiting |> Option.iter (fun t -> t.TrySetResult msg |> ignore)

    let fail (e: exn) =
        lock gate (fun () ->
            closed <- Some e
            for t in pending.Values do t.TrySetException(Exception("the DevTools connection closed", e)) |> ignore
            pending.Clear()
            Monitor.PulseAll gate)

    let reader =
        task {
            let buffer = Array.zeroCreate<byte> 65536
            let message = new MemoryStream()
            try
                try
                    while not stop.IsCancellationRequested do
                        let! r = ws.ReceiveAsync(ArraySegment buffer, stop.Token)
                        if r.MessageType = WebSocketMessageType.Close then
                            failwith "the browser closed the DevTools socket"
                        message.Write(buffer, 0, r.Count)
                        if r.EndOfMessage then
                            let text = Encoding.UTF8.GetString(message.GetBuffer(), 0, int message.Length)
                            message.SetLength 0L
                            dispatch (JsonNode.Parse text)
                with e -> fail e
            finally
                message.Dispose()
        }

    /// Sends `method` (to a page when `sessionId` is given) and returns its result; fails on error or timeout.
    member _.Call(method: string, parameters: JsonObject, sessionId: string option, ?timeout: TimeSpan) : JsonNode =
        let timeout = defaultArg timeout callTimeout
        let tcs = TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously)
        let id =
            lock gate (fun () ->
                match closed with
                | Some e -> raise (Exception(sprintf "DevTools call %s: the connection is closed" method, e))
                | None ->
                    nextId <- nextId + 1
                    pending[nextId] <- tcs
                    nextId)
        let msg = JsonObject()
        msg["id"] <- JsonValue.Create id
        msg["method"] <- JsonValue.Create method
        msg["params"] <- parameters
        sessionId |> Option.iter (fun s -> msg["sessionId"] <- JsonValue.Create s)
        let bytes = Encoding.UTF8.GetBytes(msg.ToJsonString())
        if not (sendLock.Wait timeout) then
            failwithf "DevTools call %s: could not send within %.0f s" method timeout.TotalSeconds
        try
            use cts = new CancellationTokenSource(timeout)
            await (sprintf "sending DevTools call %s" method) timeout
                (ws.SendAsync(ArraySegment bytes, WebSocketMessageType.Text, true, cts.Token))
        finally
            sendLock.Release() |> ignore
        try
            await (sprintf "DevTools call %s" method) timeout tcs.Task
        finally
            lock gate (fun () -> pending.Remove id |> ignore)
        let reply = tcs.Task.Result
        match reply["error"] with
        | null -> reply["result"]
        | err -> failwithf "DevTools call %s failed: %s" method (err.ToJsonString())

    /// How many events have arrived so far (a starting point for WaitEvent).
    member _.EventCount = lock gate (fun () -> events.Count)

    /// All events so far.
    member _.Events = lock gate (fun () -> List.ofSeq events)

    /// The first event at or after index `from` that satisfies `pred`, waiting up to `timeout`.
    member _.WaitEvent(pred: CdpEvent -> bool, from: int, timeout: TimeSpan, what: string) : CdpEvent =
        let deadline = DateTime.UtcNow + timeout
        lock gate (fun () ->
            let rec look i =
                if i < events.Count then
                    if pred events[i] then events[i] else look (i + 1)
                else
                    match closed with
                    | Some e -> raise (Exception(sprintf "waiting for %s: the DevTools connection closed" what, e))
                    | None ->
                        let left = deadline - DateTime.UtcNow
                        if left <= TimeSpan.Zero then
                            failwithf "timed out after %.0f s waiting for %s" timeout.TotalSeconds what
                        Monitor.Wait(gate, left) |> ignore
                        look i
            look from)

    interface IDisposable with
        member _.Dispose() =
            stop.Cancel()
            (try ws.Abort() with _ -> ())
            (try reader.Wait(TimeSpan.FromSeconds 5.0) |> ignore with _ -> ())
            ws.Dispose()

/// A page (tab) with its own DevTools session; collects console errors, exceptions and requests.
type Page(conn: Connection, sessionId: string) =
    let call (method: string) (parameters: JsonObject) = conn.Call(method, parameters, Some sessionId)
    let mine () = conn.Events |> List.filter (fun e -> e.SessionId = sessionId)
    let str (n: JsonNode) = match n with null -> "" | n -> n.ToString()

    member _.Call(method, parameters) = call method parameters

    /// Loads a local file and waits until the document has finished loading.
    member this.Goto(file: string, ?timeout: TimeSpan) =
        let timeout = defaultArg timeout (TimeSpan.FromSeconds 60.0)
        let url = Uri(Path.GetFullPath file).AbsoluteUri
        let r = conn.Call("Page.navigate", json {| url = url |}, Some sessionId, timeout)
        match r["errorText"] with
        | null -> ()
        | e -> failwithf "loading %s failed: %s" url (e.ToString())
        // The load event alone could be a stale one from about:blank, so also check the URL.
        let deadline = DateTime.UtcNow + timeout
        let isLoaded () =
            // While the new document replaces the old one an evaluation can fail; that just means "not yet".
            try
                this.EvalBool(sprintf "location.href === %s && document.readyState === 'complete'"
                                  (JsonSerializer.Serialize url))
            with _ -> false
        while not (isLoaded ()) do
            if DateTime.UtcNow > deadline then
                failwithf "%s did not finish loading within %.0f s" url timeout.TotalSeconds
            Thread.Sleep 10

    /// Evaluates a JS expression in the page (awaiting promises); fails if it throws.
    member _.Eval(expression: string) : JsonNode =
        let r = call "Runtime.evaluate" (json {| expression = expression; returnByValue = true; awaitPromise = true |})
        match r["exceptionDetails"] with
        | null -> r["result"]["value"]
        | d ->
            let text = match d["exception"] with null -> str (d["text"]) | ex -> str (ex["description"])
            failwithf "evaluating `%s` in the page threw: %s" expression text

    member p.EvalString e = match p.Eval e with null -> null | v -> v.GetValue<string>()
    member p.EvalFloat e = (p.Eval e).GetValue<float>()
    member p.EvalInt e = int (p.EvalFloat e)
    member p.EvalBool e = match p.Eval e with null -> false | v -> v.GetValue<bool>()

    /// Scrolls the element (a JS expression) into view and returns its centre in viewport pixels.
    member p.Center(element: string) : float * float =
        let v =
            p.Eval(sprintf "(() => { const el = %s; if (!el) throw new Error('no element: ' + %s); \
                            el.scrollIntoView({block: 'center', inline: 'center'}); const r = \
                            el.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()"
                       element (JsonSerializer.Serialize element))
        v[0].GetValue<float>(), v[1].GetValue<float>()

    /// A real mouse move (the browser fires mouseover/mousemove/mouseenter as for a user).
    member _.MouseMove(x: float, y: float) =
        call "Input.dispatchMouseEvent" (json {| ``type`` = "mouseMoved"; x = x; y = y |}) |> ignore

    member _.Click(x: float, y: float) =
        for kind in [ "mousePressed"; "mouseReleased" ] do
            call "Input.dispatchMouseEvent" (json {| ``type`` = kind; x = x; y = y; button = "left"; clickCount = 1 |})
                |> ignore

    /// Moves the mouse onto the centre of an element (a JS expression).
    member p.Hover(element: string) = p.MouseMove(p.Center element)

    member p.ClickOn(element: string) = p.Click(p.Center element)

    /// Saves a PNG of the whole page (not just the viewport).
    member _.Screenshot(path: string) =
        let metrics = call "Page.getLayoutMetrics" (JsonObject())
        let size = metrics["cssContentSize"]
        let w, h = size["width"].GetValue<float>(), size["height"].GetValue<float>()
        let clip = {| x = 0.0; y = 0.0; width = ceil w; height = min (ceil h) 8000.0; scale = 1.0 |}
        let r = call "Page.captureScreenshot" (json {| format = "png"; captureBeyondViewport = true; clip = clip |})
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath path)) |> ignore
        File.WriteAllBytes(path, Convert.FromBase64String(r["data"].GetValue<string>()))

    /// Console errors and assertions, uncaught exceptions, error log entries and dialogs, as text.
    member _.Problems: string list =
        mine ()
        |> List.choose (fun e ->
            match e.Method with
            | "Runtime.consoleAPICalled" when (let t = str (e.Params["type"]) in t = "error" || t = "assert") ->
                let args =
                    e.Params["args"].AsArray()
                        |> Seq.map (fun a -> str (match a["value"] with null -> a["description"] | v -> v))
                Some("console." + str (e.Params["type"]) + ": " + String.Join(" ", args))
            | "Runtime.exceptionThrown" ->
                let d = e.Params["exceptionDetails"]
                Some("exception: "
                     + (match d["exception"] with null -> str (d["text"]) | ex -> str (ex["description"])))
            | "Log.entryAdded" when str (e.Params["entry"]["level"]) = "error" ->
                Some("log: " + str (e.Params["entry"]["text"]))
            | "Page.javascriptDialogOpening" -> Some("dialog: " + str (e.Params["message"]))
            | _ -> None)

    /// Every URL the page requested.
    member _.Requests: string list =
        mine () |> List.filter (fun e -> e.Method = "Network.requestWillBeSent")
            |> List.map (fun e -> str (e.Params["request"]["url"]))

/// A headless Chromium with its DevTools connection; disposing kills it and deletes its profile.
type Browser(proc: Process, conn: Connection, profile: string, untrack: Process -> unit) =
    /// Opens a new page of the given viewport size, with the domains the tests read enabled.
    member _.NewPage(?width: int, ?height: int) : Page =
        let created = conn.Call("Target.createTarget", json {| url = "about:blank" |}, None)
        let target = created["targetId"].GetValue<string>()
        let attached = conn.Call("Target.attachToTarget", json {| targetId = target; flatten = true |}, None)
        let session = attached["sessionId"].GetValue<string>()
        let page = Page(conn, session)
        for domain in [ "Runtime.enable"; "Log.enable"; "Page.enable"; "Network.enable" ] do
            page.Call(domain, JsonObject()) |> ignore
        page.Call("Emulation.setDeviceMetricsOverride",
                  json {| width = defaultArg width 1200; height = defaultArg height 900; deviceScaleFactor = 1;
                          mobile = false |}) |> ignore
        page

    member _.Version =
        let v = conn.Call("Browser.getVersion", JsonObject(), None)
        v["product"].GetValue<string>()

    interface IDisposable with
        member _.Dispose() =
            (try (conn :> IDisposable).Dispose() with _ -> ())
            (try
                if not proc.HasExited then proc.Kill(entireProcessTree = true)
                proc.WaitForExit 10000 |> ignore
             with _ -> ())
            untrack proc
            proc.Dispose()
            (try Directory.Delete(profile, true) with _ -> ())

let private live = HashSet<Process>()

// Browsers still running when the test process exits (a crash, Ctrl-C) are killed too.
let private killOnExit =
    lazy
        AppDomain.CurrentDomain.ProcessExit.Add(fun _ ->
            lock live (fun () ->
                for p in live do
                    try p.Kill(entireProcessTree = true) with _ -> ()))

/// Chromium from LENS_CHROMIUM, or the first of chromium / chromium-browser / google-chrome on PATH.
let find () : string option =
    match Environment.GetEnvironmentVariable "LENS_CHROMIUM" with
    | path when not (String.IsNullOrEmpty path) -> if File.Exists path then Some path else None
    | _ ->
        let dirs =
            (Environment.GetEnvironmentVariable "PATH" |> Option.ofObj
                |> Option.defaultValue "").Split(Path.PathSeparator)
        [ "chromium"; "chromium-browser"; "google-chrome"; "google-chrome-stable" ]
        |> List.tryPick (fun name -> dirs |> Array.map (fun d -> Path.Combine(d, name)) |> Array.tryFind File.Exists)

let missingMessage =
    "CHROMIUM MISSING: the browser tests need a headless Chromium. .ci/run installs Debian's package "
    + ("(DEBIAN_FRONTEND=noninteractive apt-get install -y chromium); install it, or set LENS_CHROMIUM to a Chromium "
       + "or Chrome binary.")

/// Launches the given Chromium binary (None: fail with `missingMessage`).
let launchFrom (exe: string option) : Browser =
    let exe = match exe with Some e -> e | None -> failwith missingMessage
    killOnExit.Force()
    let profile = Path.Combine(Path.GetTempPath(), "lens-chromium-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory profile |> ignore
    let psi =
        ProcessStartInfo(exe, UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true)
    for arg in [ "--headless"; "--no-sandbox"; "--disable-gpu"; "--disable-quic"; "--no-first-run"
                 "--disable-background-networking"; "--disable-component-update"; "--disable-sync"
                 "--user-data-dir=" + profile; "--remote-debugging-port=0"; "about:blank" ] do
        psi.ArgumentList.Add arg
    let address = TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously)
    let stderr = Queue<string>()
    let proc = new Process(StartInfo = psi, EnableRaisingEvents = true)
    proc.ErrorDataReceived.Add(fun e ->
        if not (isNull e.Data) then
            lock stderr (fun () -> stderr.Enqueue e.Data; if stderr.Count > 40 then stderr.Dequeue() |> ignore)
            let m = Regex.Match(e.Data, @"DevTools listening on (ws://\S+)")
            if m.Success then address.TrySetResult m.Groups[1].Value |> ignore)
    proc.OutputDataReceived.Add ignore
    proc.Exited.Add(fun _ -> address.TrySetException(Exception "Chromium exited before it was ready") |> ignore)
    let untrack p = lock live (fun () -> live.Remove p |> ignore)
    let cleanUp () =
        (try if not proc.HasExited then proc.Kill(entireProcessTree = true) with _ -> ())
        untrack proc
        (try Directory.Delete(profile, true) with _ -> ())
    try
        if not (proc.Start()) then failwithf "could not start %s" exe
        lock live (fun () -> live.Add proc |> ignore)
        proc.BeginErrorReadLine()
        proc.BeginOutputReadLine()
        await "waiting for Chromium's DevTools address" launchTimeout address.Task
        let ws = new ClientWebSocket()
        use cts = new CancellationTokenSource(launchTimeout)
        await "connecting to Chromium's DevTools socket" launchTimeout
            (ws.ConnectAsync(Uri address.Task.Result, cts.Token))
        new Browser(proc, new Connection(ws), profile, untrack)
    with e ->
        cleanUp ()
        let tail = lock stderr (fun () -> String.Join("\n  ", stderr))
        raise (Exception(sprintf "launching %s failed: %s\n  stderr:\n  %s" exe e.Message tail, e))

/// Launches the Chromium that `find` picks. Without one the test is skipped with the reason on a developer's
/// machine and failed under CI (TestSupport.skipOrFailMissing), like every test that needs something outside the
/// repository.
let launch () =
    match find () with
    | Some exe -> launchFrom (Some exe)
    | None ->
        TestSupport.skipOrFailMissing
            "headless Chromium (no chromium, chromium-browser or google-chrome on PATH, or LENS_CHROMIUM names no file)"
            ("Install Debian's package as .ci/run does (DEBIAN_FRONTEND=noninteractive apt-get install -y chromium), "
             + "or set LENS_CHROMIUM to a Chromium or Chrome binary.")
