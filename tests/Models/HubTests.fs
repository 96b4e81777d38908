/// The hub downloader and cache (Lens.Hub) against a small hub-like server on 127.0.0.1.
module Lens.Tests.HubTests

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Http
open System.Net.Sockets
open System.Security.Cryptography
open System.Text
open System.Threading
open System.Threading.Tasks
open Expecto
open Lens.Hub

/// One request as the fake hub saw it (header names in lower case).
type SeenRequest = { Method: string; Path: string; Headers: Map<string, string> }

/// A file of the fake repository; LFS files are served like the hub does: HEAD/GET on /resolve/ redirect to a
/// CDN URL and carry X-Linked-Etag (the sha256) and X-Linked-Size.
type FakeFile =
    { Name: string; Bytes: byte[]; Lfs: bool }
    member f.Sha256 = Convert.ToHexStringLower(SHA256.HashData f.Bytes)
    /// The git blob id, which the hub sends as ETag of regular files.
    member f.GitSha1 =
        let header = Encoding.ASCII.GetBytes(sprintf "blob %d\000" f.Bytes.Length)
        Convert.ToHexStringLower(SHA1.HashData(Array.append header f.Bytes))

/// A hub-like HTTP/1.1 server (one request per connection) for one repository, on a free port of 127.0.0.1.
/// Speaks HEAD/GET with Range on /{repo}/resolve/{rev}/{file}, /cdn/{sha256} and /api/models/{repo}/revision/{rev}.
/// It stops by itself after a minute even if a test forgets to dispose it.
type FakeHub(repoId: string, commit: string, files: FakeFile list) =
    let listener = new TcpListener(IPAddress.Loopback, 0)
    let lifetime = new CancellationTokenSource(TimeSpan.FromSeconds 60.0)
    let seen = ConcurrentQueue<SeenRequest>()
    let cdnGets = ConcurrentDictionary<string, int>()
    let mutable cutFirstGetAfter : int option = None
    let mutable corrupt = false
    let mutable requiredToken : string option = None
    let mutable chunkDelayMs = 0
    let mutable renamedFrom : string option = None
    let mutable ignoreRange = false
    let mutable hangInsteadOfClosing = false
    do listener.Start()
    let port = (listener.LocalEndpoint :?> IPEndPoint).Port
    let baseUrl = sprintf "http://127.0.0.1:%d" port

    let readHead (stream: Stream) =
        let bytes = ResizeArray<byte>()
        let one = Array.zeroCreate<byte> 1
        let rec loop () =
            if bytes.Count > 16384 then None
            elif stream.Read(one, 0, 1) = 0 then None
            else
                bytes.Add one[0]
                let c = bytes.Count
                if c >= 4
                    && bytes[c - 4] = 13uy && bytes[c - 3] = 10uy && bytes[c - 2] = 13uy && bytes[c - 1] = 10uy then
                    Some(Encoding.ASCII.GetString(bytes.ToArray()))
                else loop ()
        loop ()

    let parse (head: string) =
        let lines = head.Split("\r\n", StringSplitOptions.RemoveEmptyEntries)
        let parts = lines[0].Split(' ')
        let headers =
            lines
            |> Array.skip 1
            |> Array.choose (fun l ->
                match l.IndexOf ':' with
                | -1 -> None
                | i -> Some(l.Substring(0, i).Trim().ToLowerInvariant(), l.Substring(i + 1).Trim()))
            |> Map.ofArray
        { Method = parts[0]; Path = parts[1]; Headers = headers }

    let send (stream: Stream) (isHead: bool) (status: int) (headers: (string * string) list) (body: byte[])
        (stopAfter: int option) =
        let reason =
            match status with
            | 200 -> "OK" | 206 -> "Partial Content" | 302 -> "Found" | 307 -> "Temporary Redirect"
            | 401 -> "Unauthorized" | 404 -> "Not Found" | 416 -> "Range Not Satisfiable" | _ -> "Other"
        let head = StringBuilder().Append(sprintf "HTTP/1.1 %d %s\r\n" status reason)
        for (k, v) in headers do head.Append(k).Append(": ").Append(v).Append("\r\n") |> ignore
        if not (headers |> List.exists (fun (k, _) -> k = "Content-Length")) then
            head.Append(sprintf "Content-Length: %d\r\n" body.Length) |> ignore
        head.Append("Connection: close\r\n\r\n") |> ignore
        let headBytes = Encoding.ASCII.GetBytes(head.ToString())
        stream.Write(headBytes, 0, headBytes.Length)
        if not isHead then
            let limit = defaultArg stopAfter body.Length |> min body.Length
            let mutable sent = 0
            while sent < limit do
                let n = min 512 (limit - sent)
                stream.Write(body, sent, n)
                stream.Flush()
                sent <- sent + n
                if chunkDelayMs > 0 then Thread.Sleep chunkDelayMs
            if limit < body.Length && hangInsteadOfClosing then
                // Keep the connection open without sending more, until the client gives up (or 5 s pass).
                try stream.ReadTimeout <- 5000; stream.Read(Array.zeroCreate 1, 0, 1) |> ignore with _ -> ()

    /// Serves bytes honouring `Range: bytes=N-`.
    let serveBytes stream isHead (req: SeenRequest) (extra: (string * string) list) (body: byte[])
        (stopAfter: int option) =
        match req.Headers.TryFind "range" with
        | Some range when not ignoreRange && range.StartsWith "bytes=" && range.EndsWith "-" ->
            let from = int (range.Substring(6, range.Length - 7))
            if from >= body.Length then
                send stream isHead 416 (("Content-Range", sprintf "bytes */%d" body.Length) :: extra) [||] None
            else
                let rest = body[from..]
                let headers = ("Content-Range", sprintf "bytes %d-%d/%d" from (body.Length - 1) body.Length) :: extra
                send stream isHead 206 headers rest stopAfter
        | _ -> send stream isHead 200 extra body stopAfter

    let notFound stream isHead code extra =
        send stream isHead 404 (("X-Error-Code", code) :: extra) (Encoding.UTF8.GetBytes code) None

    let authorized (req: SeenRequest) =
        match requiredToken with
        | None -> true
        | Some t -> req.Headers.TryFind "authorization" = Some("Bearer " + t)

    let handle (req: SeenRequest) (stream: Stream) =
        let isHead = req.Method = "HEAD"
        let path = Uri.UnescapeDataString(req.Path.Split('?')[0])
        let apiPrefix = "/api/models/"
        if path.StartsWith apiPrefix then
            let rest = path.Substring apiPrefix.Length
            match rest.IndexOf "/revision/" with
            | -1 -> notFound stream isHead "RepoNotFound" []
            | i ->
                let repo, rev = rest.Substring(0, i), rest.Substring(i + "/revision/".Length)
                if not (authorized req) then send stream isHead 401 [] [||] None
                elif repo <> repoId then notFound stream isHead "RepoNotFound" []
                elif rev <> "main" && rev <> commit then notFound stream isHead "RevisionNotFound" []
                else
                    let siblings =
                        files |> List.map (fun f -> sprintf """{"rfilename":"%s"}""" f.Name) |> String.concat ","
                    let json = sprintf """{"id":"%s","sha":"%s","siblings":[%s]}""" repoId commit siblings
                    send stream isHead 200 [ "Content-Type", "application/json" ] (Encoding.UTF8.GetBytes json) None
        elif path.StartsWith "/cdn/" then
            match files |> List.tryFind (fun f -> f.Lfs && "/cdn/" + f.Sha256 = path) with
            | None -> notFound stream isHead "NoSuchKey" []
            | Some f ->
                let n = if isHead then 0 else cdnGets.AddOrUpdate(f.Name, 1, fun _ c -> c + 1)
                let body =
                    if corrupt then
                        let b = Array.copy f.Bytes
                        b[b.Length / 2] <- b[b.Length / 2] ^^^ 0xFFuy
                        b
                    else f.Bytes
                let stopAfter = if n = 1 then cutFirstGetAfter else None
                serveBytes stream isHead req [ "ETag", "\"s3-md5-not-the-sha\"" ] body stopAfter
        else
            match path.IndexOf "/resolve/" with
            | -1 -> notFound stream isHead "RepoNotFound" []
            | i ->
                let repo = path.Substring(1, i - 1)
                let rest = path.Substring(i + "/resolve/".Length)
                let slash = rest.IndexOf '/'
                let rev, name = rest.Substring(0, slash), rest.Substring(slash + 1)
                if renamedFrom = Some repo then
                    send stream isHead 307 [ "Location", sprintf "/%s/resolve/%s" repoId rest ] [||] None
                elif not (authorized req) then send stream isHead 401 [] [||] None
                elif repo <> repoId then notFound stream isHead "RepoNotFound" []
                elif rev <> "main" && rev <> commit then notFound stream isHead "RevisionNotFound" []
                else
                    match files |> List.tryFind (fun f -> f.Name = name) with
                    | None -> notFound stream isHead "EntryNotFound" [ "X-Repo-Commit", commit ]
                    | Some f when f.Lfs ->
                        let headers =
                            [ "Location", sprintf "%s/cdn/%s" baseUrl f.Sha256
                              "X-Repo-Commit", commit
                              "X-Linked-Etag", sprintf "\"%s\"" f.Sha256
                              "X-Linked-Size", string f.Bytes.Length
                              "ETag", sprintf "\"%s\"" f.GitSha1 ]
                        send stream isHead 302 headers [||] None
                    | Some f ->
                        serveBytes stream isHead req [ "X-Repo-Commit", commit; "ETag", sprintf "W/\"%s\"" f.GitSha1 ]
                            f.Bytes None

    let serve (client: TcpClient) =
        try
            try
                use stream = client.GetStream()
                stream.ReadTimeout <- 5000
                stream.WriteTimeout <- 5000
                match readHead stream with
                | Some head ->
                    let req = parse head
                    seen.Enqueue req
                    handle req stream
                | None -> ()
            with _ -> () // the client went away; nothing to answer
        finally
            client.Dispose()

    let acceptLoop =
        task {
            try
                while not lifetime.IsCancellationRequested do
                    let! client = listener.AcceptTcpClientAsync(lifetime.Token)
                    Task.Run(fun () -> serve client) |> ignore
            with _ -> ()
            listener.Stop()
        }

    member _.Url = baseUrl
    member _.Requests = List.ofSeq seen
    member _.RequestCount = seen.Count
    member _.CdnGets name = match cdnGets.TryGetValue name with | true, n -> n | _ -> 0
    /// The first GET of an LFS body sends its headers and then only this many bytes before closing.
    member _.CutFirstGetAfter with set v = cutFirstGetAfter <- Some v
    /// LFS bodies come with one byte flipped (same length, wrong sha256).
    member _.Corrupt with get () = corrupt and set v = corrupt <- v
    member _.RequiredToken with set v = requiredToken <- Some v
    member _.ChunkDelayMs with set v = chunkDelayMs <- v
    /// Requests for this repo id get a relative redirect to the real one, as the hub does after a rename.
    member _.RenamedFrom with set v = renamedFrom <- Some v
    /// Range headers are ignored: every GET answers 200 with the whole body.
    member _.IgnoreRange with set v = ignoreRange <- v
    /// A cut body (CutFirstGetAfter) leaves the connection open and silent instead of closing it.
    member _.HangInsteadOfClosing with set v = hangInsteadOfClosing <- v

    interface IDisposable with
        member _.Dispose() =
            lifetime.Cancel()
            listener.Stop()
            acceptLoop.Wait(TimeSpan.FromSeconds 5.0) |> ignore

/// A temporary cache folder, deleted on dispose.
type TempCache() =
    let dir = Path.Combine(Path.GetTempPath(), "lens-hub-" + Guid.NewGuid().ToString("N"))
    do Directory.CreateDirectory dir |> ignore
    member _.Dir = dir
    interface IDisposable with
        member _.Dispose() = try Directory.Delete(dir, true) with _ -> ()

let repo = "lens-test/tiny-model"
let commit = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"
let configFile =
    { Name = "config.json"; Bytes = Encoding.UTF8.GetBytes """{"model_type":"llama","hidden_size":8}"""; Lfs = false }
let weightsFile =
    { Name = "model.safetensors"; Bytes = Array.init 6000 (fun i -> byte ((i * 31 + i / 7) % 251)); Lfs = true }
let tokenizerFile =
    { Name = "tokenizer.json"; Bytes = Encoding.UTF8.GetBytes """{"version":"1.0","model":{"type":"BPE"}}""";
      Lfs = false }
let readmeFile = { Name = "README.md"; Bytes = Encoding.UTF8.GetBytes "# tiny"; Lfs = false }
let repoFiles = [ configFile; weightsFile; tokenizerFile; readmeFile ]

let newHub () = new FakeHub(repo, commit, repoFiles)

let options (cache: TempCache) (hub: FakeHub) =
    HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Progress = null,
               StallTimeout = TimeSpan.FromSeconds 10.0, LockTimeout = TimeSpan.FromSeconds 20.0)

let repoDir (cache: TempCache) = Path.Combine(cache.Dir, "models--lens-test--tiny-model")
let blobsIn (cache: TempCache) =
    let dir = Path.Combine(repoDir cache, "blobs")
    if Directory.Exists dir then Directory.GetFiles dir |> Array.map Path.GetFileName |> Array.sort else [||]
let sha256Of (path: string) = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes path))

/// Runs `work`, expecting a HubException of `kind`, and returns it.
let expectHubError (kind: HubErrorKind) (work: unit -> Task<'a>) : Task<HubException> =
    task {
        let! outcome =
            task {
                try
                    let! _ = work ()
                    return Ok()
                with
                | :? HubException as e -> return Error e
            }
        match outcome with
        | Ok() -> return failtestf "expected a HubException (%A), but the call succeeded" kind
        | Error e ->
            Expect.equal e.Kind kind (sprintf "error kind (message: %s)" e.Message)
            return e
    }

let expectContains (text: string) (part: string) =
    Expect.stringContains text part (sprintf "the message names %s" part)

/// A test whose body is a task, run to completion on the test's thread.
let taskCase name (body: unit -> Task<unit>) = testCase name (fun () -> body().GetAwaiter().GetResult())

[<Tests>]
let tests =
    testList "hub" [
        taskCase "cold download lays out blobs, snapshots and refs like huggingface_hub" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            let reports = ConcurrentQueue<struct (string * int64 * int64)>()
            let progress = { new IProgress<struct (string * int64 * int64)> with member _.Report v = reports.Enqueue v }
            use client = new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Progress = progress))
            let! weights = client.DownloadFileAsync(repo, "model.safetensors")
            let! config = client.DownloadFileAsync(repo, "config.json")

            let snapshot = Path.Combine(repoDir cache, "snapshots", commit)
            Expect.equal weights (Path.Combine(snapshot, "model.safetensors")) "weights path in the snapshot"
            Expect.equal config (Path.Combine(snapshot, "config.json")) "config path in the snapshot"
            Expect.equal (File.ReadAllText(Path.Combine(repoDir cache, "refs", "main"))) commit
                "refs/main holds the commit"
            Expect.equal (blobsIn cache) (Array.sort [| weightsFile.Sha256; configFile.GitSha1 |])
                "blobs named by X-Linked-Etag (sha256) for LFS and by the ETag for regular files; nothing else"
            Expect.equal (FileInfo(weights).LinkTarget) ("../../blobs/" + weightsFile.Sha256)
                "relative link to the blob"
            Expect.equal (File.ReadAllBytes weights) weightsFile.Bytes "weights content"
            Expect.equal (File.ReadAllBytes config) configFile.Bytes "config content"
            let lfsGet = hub.Requests |> List.find (fun r -> r.Method = "GET" && r.Path.StartsWith "/cdn/")
            Expect.equal (lfsGet.Headers.TryFind "accept-encoding") (Some "identity") "no compression asked"
            Expect.isFalse (lfsGet.Headers.ContainsKey "range") "a cold download asks for the whole file"
            let struct (file, last, total) =
                reports |> Seq.filter (fun struct (f, _, _) -> f = "model.safetensors") |> Seq.last
            Expect.equal (file, last, total) ("model.safetensors", 6000L, 6000L) "progress ends at the file size"
        }

        taskCase "a warm cache answers without any request" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use client = new HubClient(options cache hub)
            let! first = client.DownloadFileAsync(repo, "model.safetensors")
            let before = hub.RequestCount
            let! second = client.DownloadFileAsync(repo, "model.safetensors")
            Expect.equal second first "same path"
            Expect.equal hub.RequestCount before "no request for a cached file"
            Expect.equal (HubCache.TryGetCachedFile(repo, "model.safetensors", "main", cache.Dir)) first
                "TryGetCachedFile finds it"
            Expect.isNull (HubCache.TryGetCachedFile(repo, "tokenizer.json", "main", cache.Dir))
                "an uncached file is null"
            // A client whose endpoint cannot be reached still answers from the cache.
            use dead = new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = "http://127.0.0.1:9", Progress = null))
            let! third = dead.DownloadFileAsync(repo, "model.safetensors")
            Expect.equal third first "no network needed"
            let! byCommit = dead.DownloadFileAsync(repo, "model.safetensors", commit)
            Expect.equal byCommit first "a commit hash revision is answered from the snapshot"
        }

        taskCase "an interrupted download keeps only .incomplete and the next call resumes with Range"
        <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            hub.CutFirstGetAfter <- 2500
            use client = new HubClient(options cache hub)
            let! e = expectHubError HubErrorKind.Network (fun () -> client.DownloadFileAsync(repo, "model.safetensors"))
            expectContains e.Message "2500 of 6000 bytes"
            expectContains e.Message ".incomplete"
            Expect.equal (blobsIn cache) [| weightsFile.Sha256 + ".incomplete" |] "only the partial file is in blobs/"
            let partial = Path.Combine(repoDir cache, "blobs", weightsFile.Sha256 + ".incomplete")
            Expect.equal (FileInfo(partial).Length) 2500L "the bytes received are kept"
            Expect.isNull (HubCache.TryGetCachedFile(repo, "model.safetensors", "main", cache.Dir))
                "nothing in the snapshot"

            let! path = client.DownloadFileAsync(repo, "model.safetensors")
            let gets = hub.Requests |> List.filter (fun r -> r.Method = "GET" && r.Path.StartsWith "/cdn/")
            Expect.equal (gets |> List.map (fun r -> r.Headers.TryFind "range")) [ None; Some "bytes=2500-" ]
                "the second GET resumes"
            Expect.equal (sha256Of path) weightsFile.Sha256 "the resumed file has the right sha256"
            Expect.equal (blobsIn cache) [| weightsFile.Sha256 |] "the partial file became the blob"
        }

        taskCase "a server that ignores Range makes the retry start over and still end right" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            hub.CutFirstGetAfter <- 2500
            hub.IgnoreRange <- true
            use client = new HubClient(options cache hub)
            let! _ = expectHubError HubErrorKind.Network (fun () -> client.DownloadFileAsync(repo, "model.safetensors"))
            let! path = client.DownloadFileAsync(repo, "model.safetensors")
            let gets = hub.Requests |> List.filter (fun r -> r.Method = "GET" && r.Path.StartsWith "/cdn/")
            Expect.equal (gets |> List.map (fun r -> r.Headers.TryFind "range")) [ None; Some "bytes=2500-" ]
                "resume was asked for"
            Expect.equal (sha256Of path) weightsFile.Sha256 "the whole answer replaced the partial file"
        }

        taskCase "a stalled connection fails after the stall timeout and keeps the partial file" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            hub.CutFirstGetAfter <- 1024
            hub.HangInsteadOfClosing <- true
            use client = new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Progress = null,
                                                  StallTimeout = TimeSpan.FromSeconds 2.0))
            let clock = Stopwatch.StartNew()
            let! e = expectHubError HubErrorKind.Network (fun () -> client.DownloadFileAsync(repo, "model.safetensors"))
            // The server hangs for a minute; the client must give up soon after its 2 s stall timeout
            // (the bound is loose because CI machines are shared and slow).
            Expect.isLessThan clock.Elapsed.TotalSeconds 30.0 "gave up well before the server would"
            expectContains e.Message "no data for 2 s"
            Expect.equal (blobsIn cache) [| weightsFile.Sha256 + ".incomplete" |] "the partial file is kept"
            let! path = client.DownloadFileAsync(repo, "model.safetensors")
            Expect.equal (sha256Of path) weightsFile.Sha256 "resumed to the right content"
        }

        test "the console progress bar writes one finished line when redirected" {
            use out = new StringWriter()
            let bar = ConsoleProgressBar(out, false) :> IProgress<struct (string * int64 * int64)>
            bar.Report(struct ("model.safetensors", 0L, 3072L))
            bar.Report(struct ("model.safetensors", 1024L, 3072L))
            Expect.equal (out.ToString()) "" "nothing before the end"
            bar.Report(struct ("model.safetensors", 3072L, 3072L))
            let text = out.ToString()
            Expect.stringStarts text "model.safetensors [##############################] 100.0% 3.0 KiB/3.0 KiB"
                "the finished line"
            Expect.stringEnds text "\n" "one line"
        }

        taskCase "a corrupted download is reported with both hashes and not left in the cache" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            hub.Corrupt <- true
            use client = new HubClient(options cache hub)
            let! e =
                expectHubError HubErrorKind.Integrity (fun () -> client.DownloadFileAsync(repo, "model.safetensors"))
            expectContains e.Message ("expected " + weightsFile.Sha256)
            expectContains e.Message "got "
            expectContains e.Message "model.safetensors"
            Expect.isEmpty (blobsIn cache) "neither a blob nor a partial file is left"
            Expect.isNull (HubCache.TryGetCachedFile(repo, "model.safetensors", "main", cache.Dir)) "nothing cached"
            Expect.isFalse (File.Exists(Path.Combine(repoDir cache, "refs", "main")))
                "no ref to a snapshot without the file"
            hub.Corrupt <- false
            let! path = client.DownloadFileAsync(repo, "model.safetensors")
            Expect.equal (sha256Of path) weightsFile.Sha256 "a later good download succeeds"
        }

        taskCase "offline mode never touches the network and names what is missing" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use offline =
                new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Offline = true, Progress = null))
            let! e = expectHubError HubErrorKind.Offline (fun () -> offline.DownloadFileAsync(repo, "config.json"))
            for part in [ repo; "'config.json'"; "'main'"; repoDir cache; "HF_HUB_OFFLINE" ] do
                expectContains e.Message part
            let! e2 =
                expectHubError HubErrorKind.Offline (fun () ->
                    offline.SnapshotDownloadAsync(repo, [ "config.json"; "tokenizer.json" ]))
            expectContains e2.Message "'tokenizer.json'"
            Expect.equal hub.RequestCount 0 "no request while offline"

            use online = new HubClient(options cache hub)
            let! cached = online.DownloadFileAsync(repo, "config.json")
            let before = hub.RequestCount
            let! offlineHit = offline.DownloadFileAsync(repo, "config.json")
            Expect.equal offlineHit cached "offline returns the cached file"
            let! e3 = expectHubError HubErrorKind.Offline (fun () -> offline.DownloadFileAsync(repo, "tokenizer.json"))
            expectContains e3.Message (Path.Combine(repoDir cache, "snapshots", commit))
            let! listed = offline.ListFilesAsync(repo)
            Expect.sequenceEqual listed [ "config.json" ] "offline listing is the cached snapshot"
            Expect.equal hub.RequestCount before "still no request while offline"
        }

        taskCase "404s name the missing file, revision or repository" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use client = new HubClient(options cache hub)
            let! e = expectHubError HubErrorKind.NotFound (fun () -> client.DownloadFileAsync(repo, "missing.bin"))
            Expect.equal e.StatusCode (Nullable 404) "status"
            expectContains e.Message "'missing.bin'"
            expectContains e.Message repo
            let! e2 =
                expectHubError HubErrorKind.NotFound (fun () -> client.DownloadFileAsync(repo, "config.json", "v9"))
            expectContains e2.Message "Revision 'v9'"
            let! e3 =
                expectHubError HubErrorKind.NotFound (fun () ->
                    client.DownloadFileAsync("nobody/nothing", "config.json"))
            expectContains e3.Message "Repository 'nobody/nothing' was not found"
            let! e4 = expectHubError HubErrorKind.NotFound (fun () -> client.ListFilesAsync("nobody/nothing"))
            expectContains e4.Message "'nobody/nothing'"
            Expect.isFalse (Directory.Exists(Path.Combine(repoDir cache, "snapshots")))
                "nothing written for a missing file"
        }

        taskCase "401 asks for HF_TOKEN, and the token is sent as a Bearer header" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            hub.RequiredToken <- "hf_test_secret"
            use anonymous = new HubClient(options cache hub)
            let! e =
                expectHubError HubErrorKind.Unauthorized (fun () -> anonymous.DownloadFileAsync(repo, "config.json"))
            Expect.equal e.StatusCode (Nullable 401) "status"
            expectContains e.Message "HF_TOKEN"
            expectContains e.Message repo
            use wrong =
                new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Token = "hf_wrong", Progress = null))
            let! e2 = expectHubError HubErrorKind.Unauthorized (fun () -> wrong.ListFilesAsync(repo))
            expectContains e2.Message "was not accepted"
            use authorised =
                new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Token = "hf_test_secret",
                                         Progress = null))
            let! path = authorised.DownloadFileAsync(repo, "model.safetensors")
            Expect.equal (sha256Of path) weightsFile.Sha256 "downloaded with the token"
            let head = hub.Requests |> List.findBack (fun r -> r.Method = "HEAD")
            Expect.equal (head.Headers.TryFind "authorization") (Some "Bearer hf_test_secret")
                "Bearer token on the hub request"
        }

        taskCase "an unreachable hub is a network error naming the endpoint" <| fun () -> task {
            let closed = new TcpListener(IPAddress.Loopback, 0)
            closed.Start()
            let port = (closed.LocalEndpoint :?> IPEndPoint).Port
            closed.Stop()
            use cache = new TempCache()
            let endpoint = sprintf "http://127.0.0.1:%d" port
            use client = new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = endpoint, Progress = null))
            let! e = expectHubError HubErrorKind.Network (fun () -> client.DownloadFileAsync(repo, "config.json"))
            expectContains e.Message endpoint
            expectContains e.Message "HF_HUB_OFFLINE"
        }

        taskCase "concurrent downloads of one file make one GET and one correct blob" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            hub.ChunkDelayMs <- 15
            let clients =
                [ for _ in 1..4 ->
                    let http = new HttpClient(new SocketsHttpHandler(AllowAutoRedirect = false))
                    new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, HttpClient = http,
                                             Progress = null,
                                             LockTimeout = TimeSpan.FromSeconds 20.0)), http ]
            try
                let! paths =
                    Task.WhenAll(clients |> List.map (fun (c, _) -> c.DownloadFileAsync(repo, "model.safetensors")))
                Expect.equal (Array.distinct paths).Length 1 "one path"
                Expect.equal (sha256Of paths[0]) weightsFile.Sha256 "right content"
                Expect.equal (hub.CdnGets "model.safetensors") 1
                    "the blob was fetched once; the others waited for the lock"
                Expect.equal (blobsIn cache) [| weightsFile.Sha256 |] "one blob, no partial file"
            finally
                for (c, http) in clients do
                    c.Dispose()
                    http.Dispose()
        }

        taskCase "a lock held by another process is waited for, and a timeout names the lock" <| fun () -> task {
            if not (OperatingSystem.IsLinux()) || not (File.Exists "/usr/bin/flock") then
                skiptest "needs Linux and util-linux flock(1) to hold the lock from another process"
            use hub = newHub ()
            use cache = new TempCache()
            let lockPath =
                Path.Combine(cache.Dir, ".locks", "models--lens-test--tiny-model", weightsFile.Sha256 + ".lock")
            Directory.CreateDirectory(Path.GetDirectoryName lockPath) |> ignore
            let holdLock seconds =
                let info = ProcessStartInfo("/usr/bin/flock", RedirectStandardOutput = true)
                for a in [ "-x"; lockPath; "-c"; sprintf "echo held; sleep %g" seconds ] do info.ArgumentList.Add a
                let p = Process.Start info
                Expect.equal (p.StandardOutput.ReadLine()) "held" "the other process holds the lock"
                p
            use holder = holdLock 2.0
            use impatient = new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, Progress = null,
                                                     LockTimeout = TimeSpan.FromMilliseconds 300.0))
            let! e =
                expectHubError HubErrorKind.LockTimeout (fun () ->
                    impatient.DownloadFileAsync(repo, "model.safetensors"))
            expectContains e.Message lockPath
            Expect.equal (hub.CdnGets "model.safetensors") 0 "nothing downloaded without the lock"

            use patient = new HubClient(options cache hub)
            let clock = Stopwatch.StartNew()
            let! path = patient.DownloadFileAsync(repo, "model.safetensors")
            Expect.isTrue holder.HasExited "the download waited until the other process let go"
            Expect.isGreaterThan clock.Elapsed.TotalSeconds 0.5 "it had to wait"
            Expect.equal (sha256Of path) weightsFile.Sha256 "then downloaded"
        }

        taskCase "listing, choosing and a snapshot download; a warm snapshot makes no request" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use client = new HubClient(options cache hub)
            let! files = client.ListFilesAsync(repo)
            Expect.sequenceEqual files (repoFiles |> List.map (fun f -> f.Name)) "siblings[].rfilename"
            let chosen = ModelFiles.Choose files
            Expect.sequenceEqual chosen [ "config.json"; "tokenizer.json"; "model.safetensors" ]
                "config, tokenizer, weights"
            let! folder = client.SnapshotDownloadAsync(repo, chosen)
            Expect.equal folder (Path.Combine(repoDir cache, "snapshots", commit)) "the snapshot folder"
            for f in [ configFile; tokenizerFile; weightsFile ] do
                Expect.equal (File.ReadAllBytes(Path.Combine(folder, f.Name))) f.Bytes (sprintf "%s content" f.Name)
            Expect.isFalse (File.Exists(Path.Combine(folder, "README.md"))) "only the chosen files"
            Expect.equal (File.ReadAllText(Path.Combine(repoDir cache, "refs", "main"))) commit "refs/main"
            let heads = hub.Requests |> List.filter (fun r -> r.Method = "HEAD") |> List.map (fun r -> r.Path)
            Expect.all heads (fun p -> p.Contains("/resolve/" + commit + "/")) "files are fetched at the listed commit"
            let before = hub.RequestCount
            let! again = client.SnapshotDownloadAsync(repo, chosen)
            Expect.equal again folder "same folder"
            Expect.equal hub.RequestCount before "no request for a cached snapshot"
        }

        test "ModelFiles.Choose takes an index with its shards, else fails naming the files" {
            let listing =
                [ "config.json"; "model.safetensors.index.json"; "model-00002-of-00002.safetensors";
                  "model-00001-of-00002.safetensors"
                  "tokenizer.model"; "tokenizer_config.json"; "pytorch_model.bin"; "onnx/model.onnx"; "README.md" ]
            Expect.sequenceEqual (ModelFiles.Choose listing)
                [ "config.json"; "tokenizer_config.json"; "tokenizer.model"; "model.safetensors.index.json"
                  "model-00001-of-00002.safetensors";
                  "model-00002-of-00002.safetensors" ] "safetensors shards win over pytorch_model.bin"
            let choose () = ModelFiles.Choose [ "config.json"; "README.md" ] |> ignore
            let message = Lens.Tests.TestSupport.messageOf<HubException> choose
            Expect.stringContains message "README.md, config.json" "the error lists the repository's files"
        }

        taskCase "ListCachedRepos reports id, size on disk, snapshots and refs" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use client = new HubClient(options cache hub)
            let! _ = client.SnapshotDownloadAsync(repo, [ "config.json"; "model.safetensors" ])
            Directory.CreateDirectory(Path.Combine(cache.Dir, "datasets--someone--data")) |> ignore
            match List.ofSeq (HubCache.ListCachedRepos cache.Dir) with
            | [ r ] ->
                Expect.equal r.RepoId repo "repo id from the folder name"
                Expect.equal r.SizeOnDisk (int64 (weightsFile.Bytes.Length + configFile.Bytes.Length + commit.Length))
                    "blobs and refs/main; links count 0"
                match List.ofSeq r.Snapshots with
                | [ s ] ->
                    Expect.equal s.Commit commit "commit"
                    Expect.sequenceEqual s.Refs [ "main" ] "refs"
                    Expect.sequenceEqual s.Files [ "config.json"; "model.safetensors" ] "files"
                | other -> failtestf "expected one snapshot, got %A" other
            | other -> failtestf "expected one model repo, got %A" other
            Expect.isEmpty (HubCache.ListCachedRepos(Path.Combine(cache.Dir, "absent"))) "no cache folder: no repos"
        }

        taskCase "forceRefresh asks the hub and repairs a tampered blob" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use client = new HubClient(options cache hub)
            let! path = client.DownloadFileAsync(repo, "model.safetensors")
            let blob = Path.Combine(repoDir cache, "blobs", weightsFile.Sha256)
            File.WriteAllBytes(blob, Array.zeroCreate weightsFile.Bytes.Length)
            let before = hub.RequestCount
            let! refreshed = client.DownloadFileAsync(repo, "model.safetensors", "main", true)
            Expect.equal refreshed path "same path"
            Expect.isGreaterThan hub.RequestCount before "the hub was asked"
            Expect.equal (sha256Of refreshed) weightsFile.Sha256 "the bad blob was replaced"
            Expect.equal (hub.CdnGets "model.safetensors") 2 "downloaded again"
            let! _ = client.DownloadFileAsync(repo, "model.safetensors", "main", true)
            Expect.equal (hub.CdnGets "model.safetensors") 2 "a good blob is kept"
        }

        taskCase "a relative redirect of a renamed repository is followed" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            hub.RenamedFrom <- "lens-test/old-name"
            use client = new HubClient(options cache hub)
            let! path = client.DownloadFileAsync("lens-test/old-name", "config.json")
            Expect.equal path
                (Path.Combine(cache.Dir, "models--lens-test--old-name", "snapshots", commit, "config.json"))
                "cached under the id asked for"
            Expect.equal (File.ReadAllBytes path) configFile.Bytes "content"
        }

        taskCase "an HttpClient that follows redirects itself is refused with a clear message" <| fun () -> task {
            use hub = newHub ()
            use cache = new TempCache()
            use http = new HttpClient()
            use client =
                new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = hub.Url, HttpClient = http, Progress = null))
            let! e =
                expectHubError HubErrorKind.Protocol (fun () -> client.DownloadFileAsync(repo, "model.safetensors"))
            expectContains e.Message "AllowAutoRedirect = false"
        }

        test "names that could escape the cache are refused" {
            use cache = new TempCache()
            use client =
                new HubClient(HubOptions(CacheDir = cache.Dir, Endpoint = "http://127.0.0.1:9", Progress = null))
            for bad in [ "../x"; "a/../../b"; "/etc/passwd"; "a\\b"; "" ] do
                Expect.throwsT<ArgumentException> (fun () ->
                    client.DownloadFileAsync(repo, bad).GetAwaiter().GetResult() |> ignore) bad
            for bad in [ "a/b/c"; "../x"; "a--b/c"; "" ] do
                Expect.throwsT<ArgumentException> (fun () ->
                    client.DownloadFileAsync(bad, "config.json").GetAwaiter().GetResult() |> ignore) bad
            Expect.throwsT<ArgumentException> (fun () ->
                client.DownloadFileAsync(repo, "config.json", "../main").GetAwaiter().GetResult() |> ignore) "revision"
        }

        test "cache root and options follow the huggingface_hub environment variables" {
            let envOf (pairs: (string * string) list) =
                Func<string, string>(fun name ->
                    pairs |> List.tryFind (fst >> (=) name) |> Option.map snd |> Option.toObj)
            let home = "/home/someone"
            Expect.equal (HubCache.DefaultCacheDir(envOf [], home)) "/home/someone/.cache/huggingface/hub" "default"
            Expect.equal (HubCache.DefaultCacheDir(envOf [ "HF_HOME", "/data/hf" ], home)) "/data/hf/hub" "HF_HOME"
            Expect.equal (HubCache.DefaultCacheDir(envOf [ "HF_HOME", "/data/hf"; "HF_HUB_CACHE", "~/hubcache" ], home))
                "/home/someone/hubcache" "HF_HUB_CACHE wins"
            Expect.equal (HubCache.DefaultCacheDir(envOf [ "XDG_CACHE_HOME", "/xdg" ], home)) "/xdg/huggingface/hub"
                "XDG_CACHE_HOME"
            let o =
                HubOptions.FromEnvironment(envOf [ "HF_ENDPOINT", "http://mirror.local/"; "HF_TOKEN", "hf_abc";
                                                   "HF_HUB_OFFLINE", "1" ], home)
            Expect.equal (o.Endpoint, o.Token, o.Offline) ("http://mirror.local", "hf_abc", true)
                "endpoint, token, offline"
            Expect.isFalse (o.ToString().Contains "hf_abc") "printing options does not show the token"
            let d = HubOptions.FromEnvironment(envOf [ "HF_HOME", "/nonexistent-lens-test" ], home)
            Expect.equal (d.Endpoint, d.Token, d.Offline) ("https://huggingface.co", null, false) "defaults"
        }
    ]
