namespace Lens.Hub;

/// <summary>
/// Settings of a <see cref="HubClient"/>. <c>new HubOptions()</c> reads nothing from the environment except
/// the default cache folder; <see cref="FromEnvironment()"/> reads the variables huggingface_hub reads.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The cache root holding <c>models--{org}--{name}</c> folders.</summary>
    public string CacheDir { get; init; } = HubCache.DefaultCacheDir();

    /// <summary>The hub base address, without a trailing slash.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>Sent as <c>Authorization: Bearer</c> to the hub (not to a CDN on another host).</summary>
    public string? Token { get; init; }

    /// <summary>When set, no request is ever made; only cached files are returned.</summary>
    public bool Offline { get; init; }

    /// <summary>
    /// The client to send requests with; it must not follow redirects itself (create it on a handler with
    /// <c>AllowAutoRedirect = false</c>), because the hub's file metadata is in the first, redirecting answer.
    /// When null the <see cref="HubClient"/> makes and owns one.
    /// </summary>
    public HttpClient? HttpClient { get; init; }

    /// <summary>Told how far each file download is; null for silence. Defaults to a bar on stderr.</summary>
    public IProgress<(string File, long Done, long Total)>? Progress { get; init; } = ConsoleProgressBar.Stderr;

    /// <summary>How long to wait for another process that is downloading the same file.</summary>
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>A request whose answer (headers or the next body bytes) takes longer than this fails as a network
    /// error.</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Options as huggingface_hub would set them: HF_HUB_CACHE / HF_HOME for the cache, HF_ENDPOINT, HF_TOKEN
    /// (else the token file that <c>huggingface-cli login</c> writes), HF_HUB_OFFLINE, HF_HUB_DISABLE_PROGRESS_BARS.
    /// </summary>
    public static HubOptions FromEnvironment() =>
        FromEnvironment(Environment.GetEnvironmentVariable,
            Environment.GetFolderPath(Environment.SpecialFolder.UserProfile));

    internal static HubOptions FromEnvironment(Func<string, string?> env, string userHome)
    {
        var endpoint = env("HF_ENDPOINT");
        return new HubOptions
        {
            CacheDir = HubCache.DefaultCacheDir(env, userHome),
            Endpoint = string.IsNullOrWhiteSpace(endpoint) ? DefaultEndpoint : endpoint.Trim().TrimEnd('/'),
            Token = TokenFromEnvironment(env, userHome),
            Offline = IsTrue(env("HF_HUB_OFFLINE")),
            Progress = IsTrue(env("HF_HUB_DISABLE_PROGRESS_BARS")) ? null : ConsoleProgressBar.Stderr,
        };
    }

    static string? TokenFromEnvironment(Func<string, string?> env, string userHome)
    {
        var token = env("HF_TOKEN");
        if (!string.IsNullOrWhiteSpace(token)) return token.Trim();
        var tokenPath = env("HF_TOKEN_PATH");
        if (string.IsNullOrWhiteSpace(tokenPath)) tokenPath = Path.Combine(HubCache.HfHome(env, userHome), "token");
        try
        {
            if (File.Exists(tokenPath))
            {
                var stored = File.ReadAllText(tokenPath).Trim();
                if (stored.Length > 0) return stored;
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>Never shows the token itself, so options can be logged.</summary>
    public override string ToString() =>
        $"HubOptions {{ CacheDir = {CacheDir}, Endpoint = {Endpoint}, Token = {(Token is null ? "none" : "set")}, " +
            $"Offline = {Offline} }}";

    /// <summary>huggingface_hub's truthy values: 1, ON, YES, TRUE (any case).</summary>
    internal static bool IsTrue(string? value) =>
        value is not null && value.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";
}
