/// The F# face of Lens: idiomatic wrappers over the C# core.
module Lens.FSharp

/// Makes sure TorchSharp's native library is loadable (see Lens.Native.TorchNative).
let init () = Lens.Native.TorchNative.EnsureLoaded()
