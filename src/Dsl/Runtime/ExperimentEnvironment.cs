namespace Lens.Dsl.Runtime;

/// <summary>
/// What an experiment runs against, outside its state: the file it came from (for locations and
/// statement text), where relative paths are read from and written to, the command line's model and
/// device overrides, a listener for results as they are produced, and the loaded models (kept for the
/// environment's lifetime, so a REPL loads a model once). Disposing it frees the models.
/// </summary>
public sealed class ExperimentEnvironment : IDisposable
{
    /// <summary>The model an experiment runs on when neither it nor the command line names one.</summary>
    public const string DefaultModel = "demo-attn-only-2l";

    readonly Dictionary<(string Name, string Device), ModelHandle> models = new();
    string[]? lines;

    /// <summary>What locations call the experiment ("induction.lens", or "&lt;pipeline&gt;" for code-built
    /// ones).</summary>
    public string FileName { get; init; } = "<pipeline>";

    /// <summary>The experiment text, when it was written as text: gives error messages their source line and results
    /// their statement text.</summary>
    public string? SourceText
    {
        get => sourceText;
        set { sourceText = value; lines = null; }
    }

    string? sourceText;

    /// <summary>Relative paths that are read (`input file`, `cache load`) are relative to this folder: the experiment
    /// file's.</summary>
    public string ReadDirectory { get; init; } = Directory.GetCurrentDirectory();

    /// <summary>Relative paths that are written (`show ... > PATH`, `cache save`) are relative to this folder: the
    /// working directory.</summary>
    public string WriteDirectory { get; init; } = Directory.GetCurrentDirectory();

    /// <summary>A model named on the command line: it replaces the experiment's `model`.</summary>
    public string? ModelOverride { get; init; }

    /// <summary>A device named on the command line: it replaces the experiment's `device`.</summary>
    public DeviceSpec? DeviceOverride { get; init; }

    /// <summary>Called with each result as soon as its statement has run.</summary>
    public Action<ExperimentResult>? OnResult { get; init; }

    /// <summary>The largest estimated memory of one statement, as the last check found it (null before a check, or with
    /// no input).</summary>
    public MemoryPeak? EstimatedPeak { get; set; }

    /// <summary>
    /// The memory budget in bytes the checks size chunks of rows by (null: what the machine has available, bounded by
    /// LENS_MEMORY_LIMIT).
    /// </summary>
    public long? MemoryBudget { get; init; }

    /// <summary>The statements the last check found too large for one batch, and the chunks of rows they run
    /// in.</summary>
    public Dictionary<Statement, ChunkPlan> ChunkPlans { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>The source line (1-based), or null when there is no text or no such line.</summary>
    public string? Line(int line)
    {
        if (SourceText is null || line < 1) return null;
        lines ??= SourceText.TrimStart('\uFEFF').Split('\n').Select(l => l.EndsWith('\r') ? l[..^1] : l).ToArray();
        return line <= lines.Length ? lines[line - 1] : null;
    }

    /// <summary>A statement as it was written (one line), or its canonical text when it was built in code or spans
    /// lines.</summary>
    public string TextOf(Statement statement)
    {
        var span = statement.Span;
        if (statement is InterventionStatement { Body: not null } block) return Printer.Print(block.Intervention);
        if (span.Line > 0 && span.Line == span.EndLine && Line(span.Line) is string line
            && span.EndColumn - 1 <= line.Length)
            return line[(span.Column - 1)..(span.EndColumn - 1)];
        return Printer.Print(statement);
    }

    readonly List<FileRead> filesRead = [];

    /// <summary>Every file the experiment read (model files, input files, caches), in the order first read, with its
    /// sha256.</summary>
    public IReadOnlyList<FileRead> FilesRead { get { lock (filesRead) return [.. filesRead]; } }

    /// <summary>Notes that the run read a file (once per path), hashing it now. A folder (a model checkpoint) notes
    /// each of its files.</summary>
    public void RecordRead(string role, string path)
    {
        var full = Path.GetFullPath(path);
        var files = Directory.Exists(full)
            ? Directory.GetFiles(full).Order(StringComparer.Ordinal).ToArray()
            : File.Exists(full) ? [full] : [];
        lock (filesRead)
            foreach (var file in files)
                if (!filesRead.Any(f => f.Path == file))
                    filesRead.Add(new FileRead(role, file, Provenance.Sha256(file)));
    }

    public string ReadPath(string path) => Path.GetFullPath(Path.Combine(ReadDirectory, path));

    public string WritePath(string path) => Path.GetFullPath(Path.Combine(WriteDirectory, path));

    /// <summary>
    /// The model at <paramref name="location"/> on this device, loaded on first use (through <see cref="ModelLoader"/>)
    /// and called <paramref name="name"/> (the reference as the experiment wrote it).
    /// </summary>
    public ModelHandle LoadModel(string name, string location, DeviceSpec device)
    {
        var key = (location, device.ToString());
        lock (models)
        {
            if (models.TryGetValue(key, out var handle)) return handle;
            var model = ModelLoader.Load(location,
                new LoadOptions { Device = device.Kind == DeviceKind.Cpu ? null : device.ToTorch() });
            RecordRead("model", location);
            return models[key] = new ModelHandle(name, model);
        }
    }

    readonly Dictionary<(string Path, string? Hook, string Device), Lens.Sae.SparseAutoencoder> saes = new();

    /// <summary>Where `sae load` downloads a hub SAE (owner/repo[/folder]) from; null: the environment's hub settings
    /// (HF_ENDPOINT, HF_HOME, ...).</summary>
    public Lens.Hub.HubOptions? Hub { get; init; }

    /// <summary>
    /// What `sae load PATH` names: the path relative to the experiment's folder when something is there, else, when it
    /// reads as one, a hub id (owner/repo[/folder], as SaeLoader takes it) as written, else the (missing) local path.
    /// </summary>
    public string SaeLocation(string written)
    {
        var local = ReadPath(written);
        return !File.Exists(local) && !Directory.Exists(local) && Lens.Hub.SaeHubSource.IsRepoId(written)
            ? written
            : local;
    }

    /// <summary>The SAE at <paramref name="path"/> (a SAELens folder, Gemma Scope params.npz, or a hub id from
    /// <see cref="SaeLocation"/>), attached at <paramref name="hook"/> when given, on this device; loaded on first use
    /// and kept.</summary>
    public Lens.Sae.SparseAutoencoder LoadSae(string path, string? hook, DeviceSpec device)
    {
        bool hubId = Lens.Hub.SaeHubSource.IsRepoId(path);
        var key = (hubId ? path : Path.GetFullPath(path), hook, device.ToString());
        lock (saes)
        {
            if (saes.TryGetValue(key, out var sae)) return sae;
            sae = Lens.Hub.SaeHubSource.Load(key.Item1, hook, device.Kind == DeviceKind.Cpu ? null : device.ToTorch(),
                Hub);
            RecordRead("sae", hubId ? sae.Source : key.Item1);
            return saes[key] = sae;
        }
    }

    public void Dispose()
    {
        lock (saes)
        {
            foreach (var sae in saes.Values) sae.Dispose();
            saes.Clear();
        }
        lock (models)
        {
            foreach (var handle in models.Values) handle.Model.Dispose();
            models.Clear();
        }
    }
}
