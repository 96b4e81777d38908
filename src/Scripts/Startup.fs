namespace Lens.FSharp

/// What a host does before Lens runs: load libtorch (patched where this system needs it) and resolve model
/// names through every source (Lens.Models.ModelSources.All: the embedded demo model, local folders, known
/// names, hub ids). The F# face's entry points call it, so a script on the Lens.FSharp package needs nothing more.
module Startup =
    let private started = lazy (Lens.Native.TorchNative.EnsureLoaded(); Lens.Models.ModelSources.Use())

    /// Does the start-up once; later calls return at once.
    let ensure () = started.Force()
