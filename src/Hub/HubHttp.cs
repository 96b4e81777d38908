using System.Net;
using System.Net.Http.Headers;
using System.Reflection;

namespace Lens.Hub;

/// <summary>
/// Sends requests to the hub with the headers huggingface_hub sends, follows redirects by hand (the hub's
/// metadata headers are on the redirecting answer itself), and turns transport failures into
/// <see cref="HubException"/>s.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    public enum Redirects
    {
        /// <summary>Follow only relative redirects (a renamed repository); stop at one to another host (a
        /// CDN).</summary>
        RelativeOnly,
        /// <summary>Follow every redirect.</summary>
        All,
    }

    const int MaxRedirects = 10;
    static readonly string UserAgent =
        "lens/"
            + (typeof(HubHttp)
            .Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0");

    readonly HttpClient _client;
    readonly bool _ownsClient;
    readonly string? _token;

    public Uri Endpoint { get; }
    public string EndpointText { get; }
    public TimeSpan StallTimeout { get; }
    public bool SendsToken => _token is not null;

    public HubHttp(HubOptions options)
    {
        EndpointText = options.Endpoint.TrimEnd('/');
        if (!Uri.TryCreate(EndpointText, UriKind.Absolute, out var endpoint)
            || (endpoint.Scheme != "http" && endpoint.Scheme != "https"))
            throw new ArgumentException(
                $"The hub endpoint '{options.Endpoint}' is not an http(s) address (see HF_ENDPOINT).", nameof(options));
        Endpoint = endpoint;
        _token = string.IsNullOrWhiteSpace(options.Token) ? null : options.Token.Trim();
        StallTimeout = options.StallTimeout;
        _ownsClient = options.HttpClient is null;
        _client = options.HttpClient ?? CreateDefaultClient();
    }

    /// <summary>A client that leaves redirects and decompression to us; body timeouts are per read, not per
    /// request.</summary>
    public static HttpClient CreateDefaultClient() =>
        new(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = TimeSpan.FromSeconds(30),
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        })
        { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>
    /// Sends <paramref name="method"/> to <paramref name="url"/>, following redirects per <paramref name="redirects"/>.
    /// The answer is returned whatever its status (the caller owns it); a redirect not followed is returned as is.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(
        HttpMethod method, Uri url, Redirects redirects, Action<HttpRequestMessage>? configure, CancellationToken ct)
    {
        for (var hop = 0; ; hop++)
        {
            var request = new HttpRequestMessage(method, url);
            request.Headers.TryAddWithoutValidation("User-Agent", UserAgent);
            // Like huggingface_hub: no compression, so Content-Length is the real file size.
            request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
            // The token goes to the hub only, never to a CDN host the hub redirects to (its URLs are signed).
            if (_token is not null && SameOrigin(url, Endpoint))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
            configure?.Invoke(request);

            var response = await SendOnceAsync(request, ct).ConfigureAwait(false);
            if (response.RequestMessage?.RequestUri is { } answered && answered != url)
            {
                response.Dispose();
                throw new HubException(HubErrorKind.Protocol,
                    "The HttpClient given in HubOptions follows redirects by itself, which hides the hub's file " +
                    "metadata; " +
                    "create it on a handler with AllowAutoRedirect = false.");
            }
            var status = (int)response.StatusCode;
            if (status is >= 300 and < 400 && response.Headers.Location is { } location)
            {
                var follow = redirects == Redirects.All || !location.IsAbsoluteUri;
                if (follow)
                {
                    response.Dispose();
                    if (hop >= MaxRedirects)
                        throw new HubException(HubErrorKind.Protocol,
                            $"More than {MaxRedirects} redirects starting from {method} {url}.");
                    url = location.IsAbsoluteUri ? location : new Uri(url, location);
                    continue;
                }
            }
            return response;
        }
    }

    async Task<HttpResponseMessage> SendOnceAsync(HttpRequestMessage request, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(StallTimeout);
        try
        {
            return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token)
                .ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!ct.IsCancellationRequested)
        {
            throw new HubException(HubErrorKind.Network,
                $"No answer within {StallTimeout.TotalSeconds:0.#} s from {Describe(request.RequestUri!)} " +
                $"for {request.Method} {request.RequestUri}.{OfflineHint}", e);
        }
        catch (HttpRequestException e)
        {
            throw new HubException(HubErrorKind.Network,
                $"Could not reach {Describe(request.RequestUri!)} " +
                $"for {request.Method} {request.RequestUri}: {e.Message}{OfflineHint}", e);
        }
    }

    const string OfflineHint = " Check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only cached files.";

    /// <summary>"the hub at X", or "Y (a host the hub at X redirected to)".</summary>
    public string Describe(Uri url) =>
        SameOrigin(url, Endpoint)
            ? $"the hub at {EndpointText}"
            : $"{url.GetLeftPart(UriPartial.Authority)} (where the hub at {EndpointText} redirected)";

    static bool SameOrigin(Uri a, Uri b) =>
        a.Scheme == b.Scheme && string.Equals(a.Host, b.Host, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>A header's value from the response or its content headers.</summary>
    public static string? Header(HttpResponseMessage response, string name)
    {
        if (response.Headers.TryGetValues(name, out var values)) return values.FirstOrDefault();
        if (response.Content.Headers.TryGetValues(name, out values)) return values.FirstOrDefault();
        return null;
    }

    public void Dispose()
    {
        if (_ownsClient) _client.Dispose();
    }
}
