namespace Lens.Hub;

/// <summary>Turns a failed hub answer into a <see cref="HubException"/> whose message names what was asked
/// for.</summary>
internal static class HubErrors
{
    /// <param name="filename">Null for repository-level calls (listing files).</param>
    public static HubException ForResponse(HttpResponseMessage response, HubHttp http, string repoId, string? filename,
        string revision)
    {
        var status = (int)response.StatusCode;
        var errorCode = HubHttp.Header(response, "X-Error-Code");
        var hubSays = HubHttp.Header(response, "X-Error-Message") is { Length: > 0 } m ? $" The hub says: {m}" : "";
        var what = filename is null
            ? $"repository '{repoId}' at revision '{revision}'"
            : $"file '{filename}' of repository '{repoId}' at revision '{revision}'";
        var endpoint = http.EndpointText;

        if (errorCode == "GatedRepo" && status is 401 or 403)
            return new HubException(HubErrorKind.Unauthorized,
                $"Repository '{repoId}' is gated (HTTP {status}): accept its conditions at {endpoint}/{repoId} while " +
                $"logged in, " +
                $"then set HF_TOKEN to a token of that account{(http.SendsToken ? " (the token sent has no access " +
                "yet)" : "")}.{hubSays}", statusCode: status);

        switch (status)
        {
            case 401:
                return new HubException(HubErrorKind.Unauthorized,
                    $"The hub at {endpoint} refused the {what} (HTTP 401): the repository is private or gated, or " +
                    $"does not exist. " + (http.SendsToken
                        ? "The token sent (HF_TOKEN) was not accepted for it."
                        : "No token was sent: set HF_TOKEN to a token with read access to it.") + hubSays,
                    statusCode: status);
            case 403:
                return new HubException(HubErrorKind.Unauthorized,
                    $"The hub at {endpoint} forbids the {what} (HTTP 403): " +
                    (http.SendsToken
                        ? "the token in HF_TOKEN lacks access to it."
                        : "set HF_TOKEN to a token with access to it.") + hubSays, statusCode: status);
            case 404:
                var message = errorCode switch
                {
                    "EntryNotFound" when filename is not null =>
                        $"File '{filename}' was not found in repository '{repoId}' at revision '{revision}' (HTTP " +
                            $"404).",
                    "RevisionNotFound" => $"Revision '{revision}' was not found in repository '{repoId}' (HTTP 404).",
                    "RepoNotFound" => $"Repository '{repoId}' was not found on {endpoint} (HTTP 404).",
                    _ when filename is null =>
                        $"Repository '{repoId}' or its revision '{revision}' was not found on {endpoint} (HTTP 404).",
                    _ => $"Not found on {endpoint} (HTTP 404): repository '{repoId}', or its file '{filename}' at " +
                        $"revision '{revision}'.",
                };
                return new HubException(HubErrorKind.NotFound, message + hubSays, statusCode: status);
            default:
                return new HubException(status >= 500 ? HubErrorKind.Network : HubErrorKind.Protocol,
                    $"The hub at {endpoint} answered HTTP {status} {response.ReasonPhrase} " +
                    $"for {response.RequestMessage?.Method} " +
                    $"{response.RequestMessage?.RequestUri} ({what}).{hubSays}",
                    statusCode: status);
        }
    }
}
