namespace Lens.Hub;

/// <summary>What went wrong talking to the hub or its cache, so a caller (the CLI) can react per kind.</summary>
public enum HubErrorKind
{
    /// <summary>The repository, revision or file does not exist (HTTP 404).</summary>
    NotFound,
    /// <summary>The hub refused access (HTTP 401/403): private or gated repository, missing or bad HF_TOKEN.</summary>
    Unauthorized,
    /// <summary>The hub could not be reached, or the connection broke or stalled mid-download.</summary>
    Network,
    /// <summary>The downloaded bytes do not match the size or sha256 the hub announced.</summary>
    Integrity,
    /// <summary>Offline mode is on and the cache does not hold what was asked for.</summary>
    Offline,
    /// <summary>Another process held the download lock of the same file for longer than the lock timeout.</summary>
    LockTimeout,
    /// <summary>The server answered something a Hugging Face hub would not (missing headers, other HTTP
    /// status).</summary>
    Protocol,
}

/// <summary>A hub or cache failure, with a plain message that names what is missing or wrong.</summary>
public sealed class HubException : Exception
{
    public HubErrorKind Kind { get; }

    /// <summary>The HTTP status the hub answered, when the failure came from one.</summary>
    public int? StatusCode { get; }

    public HubException(HubErrorKind kind, string message, Exception? inner = null, int? statusCode = null)
        : base(message, inner)
    {
        Kind = kind;
        StatusCode = statusCode;
    }
}
