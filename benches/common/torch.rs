//! The libtorch baseline (feature `libtorch`): the same U-Net built from tch's layers, the
//! same Dice losses, and the ops one by one, on the cpu (f32) and, when libtorch sees one, a
//! CUDA GPU (autocast to f16, as PyTorch's usual mixed-precision training).

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use enamel::nn::UNetConfig;

/// A libtorch device to run on, with the device label used in function names.
#[derive(Clone, Copy)]
pub struct TorchDevice {
    pub label: &'static str,
    pub device: Device,
}

impl TorchDevice {
    /// Runs `f` under autocast on a GPU, as is on the cpu.
    pub fn precision<T>(&self, f: impl FnOnce() -> T) -> T {
        tch::autocast(self.device.is_cuda(), f)
    }

    /// Waits for the GPU's queued work, so a timed iteration includes it.
    pub fn sync(&self) {
        if let Device::Cuda(index) = self.device {
            tch::Cuda::synchronize(index as i64);
        }
    }
}

/// `cpu` always; `cuda` when libtorch finds a GPU (a printed line says when it does not).
pub fn devices() -> Vec<TorchDevice> {
    let mut devices = vec![TorchDevice {
        label: "cpu",
        device: Device::Cpu,
    }];
    if tch::Cuda::is_available() {
        devices.push(TorchDevice {
            label: "cuda",
            device: Device::Cuda(0),
        });
    } else {
        static SAID: std::sync::OnceLock<()> = std::sync::OnceLock::new();
        SAID.get_or_init(|| println!("skipping libtorch-cuda: libtorch sees no CUDA device"));
    }
    devices
}

/// Uniform values in [−1, 1) on `device`, from a fixed seed.
pub fn random(shape: &[usize], seed: i64, device: Device) -> Tensor {
    tch::manual_seed(seed);
    let shape: Vec<i64> = shape.iter().map(|&s| s as i64).collect();
    Tensor::rand(&shape, (Kind::Float, device)) * 2.0 - 1.0
}

struct ConvNormBlock {
    conv: nn::Conv3D,
    norm: nn::BatchNorm,
}

impl ConvNormBlock {
    fn new(vs: nn::Path, cin: i64, cout: i64) -> Self {
        let padded = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        ConvNormBlock {
            conv: nn::conv3d(&vs / "conv", cin, cout, 3, padded),
            norm: nn::batch_norm3d(&vs / "norm", cout, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.conv.forward(x).relu().apply_t(&self.norm, train)
    }
}

struct Up {
    up: nn::ConvTranspose3D,
    norm: nn::BatchNorm,
    conv1: ConvNormBlock,
    conv2: ConvNormBlock,
}

/// The reference U-Net as enamel builds it (see `enamel::nn::UNet`), from tch's layers.
pub struct TorchUNet {
    pub vs: nn::VarStore,
    down: Vec<(ConvNormBlock, ConvNormBlock)>,
    up: Vec<Up>,
    last: nn::Conv3D,
}

impl TorchUNet {
    pub fn new(config: &UNetConfig, device: Device) -> Self {
        let vs = nn::VarStore::new(device);
        let root = vs.root();
        let mut down = Vec::new();
        let mut channels = config.in_channels as i64;
        for level in 0..config.n_blocks {
            let filters = (config.start_filters << level) as i64;
            let p = &root / format!("down{level}");
            down.push((
                ConvNormBlock::new(&p / "a", channels, filters),
                ConvNormBlock::new(&p / "b", filters, filters),
            ));
            channels = filters;
        }
        let mut up = Vec::new();
        for level in (0..config.n_blocks - 1).rev() {
            let filters = (config.start_filters << level) as i64;
            let p = &root / format!("up{level}");
            let stride2 = nn::ConvTransposeConfig {
                stride: 2,
                ..Default::default()
            };
            up.push(Up {
                up: nn::conv_transpose3d(&p / "up", channels, filters, 2, stride2),
                norm: nn::batch_norm3d(&p / "norm", filters, Default::default()),
                conv1: ConvNormBlock::new(&p / "a", 2 * filters, filters),
                conv2: ConvNormBlock::new(&p / "b", filters, filters),
            });
            channels = filters;
        }
        let out = config.out_channels as i64;
        let last = nn::conv3d(&root / "last", channels, out, 1, Default::default());
        TorchUNet { vs, down, up, last }
    }

    pub fn parameter_count(&self) -> usize {
        self.vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel())
            .sum()
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        let mut skips = Vec::new();
        let mut h = x.shallow_clone();
        for (i, (a, b)) in self.down.iter().enumerate() {
            h = b.forward(&a.forward(&h, train), train);
            if i + 1 < self.down.len() {
                skips.push(h.shallow_clone());
                h = h.max_pool3d([2, 2, 2], [2, 2, 2], [0, 0, 0], [1, 1, 1], false);
            }
        }
        for block in &self.up {
            let skip = skips.pop().expect("one skip per decoder level");
            let up = block.up.forward(&h).relu().apply_t(&block.norm, train);
            h = Tensor::cat(&[up, skip], 1);
            h = block.conv2.forward(&block.conv1.forward(&h, train), train);
        }
        self.last.forward(&h)
    }
}

/// 1 − Dice of sigmoid(logits) against a 0/1 target, over the whole batch.
pub fn dice_binary(logits: &Tensor, target: &Tensor) -> Tensor {
    let p = logits.to_kind(Kind::Float).sigmoid();
    let overlap = (&p * target).sum(Kind::Float);
    let sizes = p.sum(Kind::Float) + target.sum(Kind::Float);
    1.0 - (overlap * 2.0 + 1.0) / (sizes + 1.0)
}

/// 1 − mean over classes of the Dice of softmax(logits) against one-hot `labels` (int64,
/// N,D,H,W).
pub fn dice_categorical(logits: &Tensor, labels: &Tensor) -> Tensor {
    let classes = logits.size()[1];
    let p = logits.to_kind(Kind::Float).softmax(1, Kind::Float);
    let one_hot = labels
        .one_hot(classes)
        .permute([0, 4, 1, 2, 3])
        .to_kind(Kind::Float);
    let axes: &[i64] = &[0, 2, 3, 4];
    let overlap = (&p * &one_hot).sum_dim_intlist(axes, false, Kind::Float);
    let sizes = p.sum_dim_intlist(axes, false, Kind::Float)
        + one_hot.sum_dim_intlist(axes, false, Kind::Float);
    1.0 - ((overlap * 2.0 + 1.0) / (sizes + 1.0)).mean(Kind::Float)
}

/// A network, its optimizer (RMSprop, lr 1e-3) and one training batch, on one device.
pub struct TorchTrainer {
    pub net: TorchUNet,
    opt: nn::Optimizer,
    x: Tensor,
    target: Tensor,
    categorical: bool,
    pub device: TorchDevice,
}

impl TorchTrainer {
    /// `target` is a 0/1 f32 volume for one output channel, labels 0..classes otherwise.
    pub fn new(config: &UNetConfig, device: TorchDevice, size: [usize; 3]) -> Self {
        let net = TorchUNet::new(config, device.device);
        let opt = nn::RmsProp::default()
            .build(&net.vs, 1e-3)
            .expect("RMSprop over the net's variables");
        let [d, h, w] = size;
        let x = random(&[1, 1, d, h, w], 2, device.device);
        let noise = random(&[1, d, h, w], 3, device.device);
        let categorical = config.out_channels > 1;
        let target = if categorical {
            ((noise + 1.0) * (config.out_channels as f64 / 2.0))
                .floor()
                .clamp(0.0, config.out_channels as f64 - 1.0)
                .to_kind(Kind::Int64)
        } else {
            noise.gt(0.4).to_kind(Kind::Float).unsqueeze(1)
        };
        TorchTrainer {
            net,
            opt,
            x,
            target,
            categorical,
            device,
        }
    }

    /// Forward, Dice, backward, optimizer step; returns the loss.
    pub fn step(&mut self) -> f64 {
        let loss = self.device.precision(|| {
            let logits = self.net.forward(&self.x, true);
            if self.categorical {
                dice_categorical(&logits, &self.target)
            } else {
                dice_binary(&logits, &self.target)
            }
        });
        self.opt.backward_step(&loss);
        self.device.sync();
        loss.double_value(&[])
    }
}

/// Eval-mode probabilities of `net` on one window (sigmoid for one channel, else softmax).
pub fn predict(net: &TorchUNet, device: TorchDevice, window: &Tensor) -> Tensor {
    tch::no_grad(|| {
        device.precision(|| {
            let logits = net.forward(window, false).to_kind(Kind::Float);
            if logits.size()[1] == 1 {
                logits.sigmoid()
            } else {
                logits.softmax(1, Kind::Float)
            }
        })
    })
}

/// `Σ y·gy`: backpropagating it gives `y`'s inputs their gradients for the output gradient
/// `gy` (tch has no `backward(gradient)`); its backward adds one element-wise pass over `y`.
pub fn dot(y: &Tensor, gy: &Tensor) -> Tensor {
    (y * gy).sum(Kind::Float)
}

/// The gradients of `inputs` from `dot`, keeping the graph so it can run again.
pub fn backward(dot: &Tensor, inputs: &[&Tensor]) -> Vec<Tensor> {
    Tensor::run_backward(&[dot], inputs, true, false)
}
