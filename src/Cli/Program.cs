using TorchSharp;
Lens.Native.TorchNative.EnsureLoaded();
using var a = torch.randn(3, 3);
Console.WriteLine(Lens.Native.TorchNative.Status);
Console.WriteLine(a.matmul(a).sum().item<float>());
