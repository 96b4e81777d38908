module Lens.Tests.NativeLoadingTests

open Expecto
open TorchSharp

[<Tests>]
let tests =
    testList "native loading" [
        testCase "TorchSharp initialises from the test runner" <| fun () ->
            Lens.Native.TorchNative.EnsureLoaded()
            use a = torch.arange(6L, dtype = torch.float32).reshape(2L, 3L)
            use b = a.matmul(a.t())
            Expect.equal (b.sum().item<float32>()) 83.0f "matmul through libtorch"
            Expect.isNotEmpty Lens.Native.TorchNative.Status "status is reported"
    ]
